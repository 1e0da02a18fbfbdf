package state

import "errors"

// ErrCorruptStore reports that a persistent store cannot be trusted: its
// files are damaged, missing or unreadable, or its path is not a store
// directory at all. Backends return it (wrapped, so match it with errors.Is)
// from their constructor, and from any later call that reads damaged data.
//
// A store's changelog topic is the source of truth for its contents, so the
// engine reacts by wiping the store directory and restoring the store from
// the changelog. Errors that wiping cannot fix, such as a permission denied
// or a full disk, are not reported as ErrCorruptStore.
var ErrCorruptStore = errors.New("state: store is corrupt; wipe its directory and restore it from its changelog")

// ErrClosed is returned by a Backend or ReadView used after Close, and by
// the Err method of an Iterator whose Backend was closed under it.
var ErrClosed = errors.New("state: store is closed (it was used after Close)")
