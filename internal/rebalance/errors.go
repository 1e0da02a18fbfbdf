package rebalance

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidConfig is wrapped by the errors NewLayout and NewBalancer return
// for a configuration they cannot work with; the message names the field.
var ErrInvalidConfig = errors.New("rebalance: invalid config")

// ErrNotEddy is wrapped by the decoders when the bytes are not eddy's at all:
// not a consumer-protocol envelope, or one whose user data does not start
// with eddy's magic bytes. In a group it means that a member joined under
// eddy's protocol name without being eddy. (A plain consumer that uses the
// application id as its group id, with its own protocol, is refused by the
// broker with INCONSISTENT_GROUP_PROTOCOL before any balancing.)
var ErrNotEddy = errors.New("rebalance: not eddy group data")

// ErrMalformed is wrapped by the decoders when the bytes carry eddy's magic
// but are truncated or corrupt, or hold a version older than any eddy wrote.
var ErrMalformed = errors.New("rebalance: malformed eddy group data")

// MemberMetadataError reports a group member whose join metadata the leader
// could not decode. The leader's Balancer returns it from MemberBalancer, so
// kgo fails the balance and reports it as a group management error (through
// kgo's HookGroupManageError and as an ErrGroupSession from PollFetches).
// kgo formats it into its own error with %v, so match it with errors.As only
// on what the Balancer itself returns.
type MemberMetadataError struct {
	// MemberID is the member's group member id.
	MemberID string
	// InstanceID is the member's group instance id (static membership),
	// or "" if it has none.
	InstanceID string
	// Err is the decoding error; it wraps ErrNotEddy or ErrMalformed.
	Err error
}

func (e *MemberMetadataError) Error() string {
	who := fmt.Sprintf("member %q", e.MemberID)
	if e.InstanceID != "" {
		who += fmt.Sprintf(" (instance %q)", e.InstanceID)
	}
	detail := strings.TrimPrefix(e.Err.Error(), "rebalance: ")
	if errors.Is(e.Err, ErrNotEddy) {
		return fmt.Sprintf("rebalance: the group contains %s that is not an eddy member (%s); "+
			"every member of an eddy application's group must be an eddy instance running the same application "+
			"(is another program joining the group under the protocol name %q?)", who, detail, ProtocolName)
	}
	return fmt.Sprintf("rebalance: cannot decode the join metadata of group %s (%s); "+
		"is it running an incompatible eddy version?", who, detail)
}

// Unwrap returns Err.
func (e *MemberMetadataError) Unwrap() error { return e.Err }
