package admin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddystream/eddy/admin"
)

// restoring is a Health of an application whose active tasks are still
// restoring their stores.
type restoring struct{}

func (restoring) Alive() error { return nil }
func (restoring) Ready() error { return errors.New("3 active tasks restoring") }

func Example() {
	srv, err := admin.New("127.0.0.1:0", prometheus.NewRegistry(), restoring{}, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close(context.Background())

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := client.Get("http://" + srv.Addr() + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s", path, resp.StatusCode, body)
	}
	// Output:
	// /healthz 200 ok
	// /readyz 503 3 active tasks restoring
}
