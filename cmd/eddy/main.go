// Command eddy is eddy's command-line tool.
//
//	eddy bench    measure throughput against a hand-written franz-go pipe
//	eddy broker   start a real Apache Kafka broker and print its address
//
// Run "eddy <command> -h" for a command's flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "bench":
		err = bench(ctx, os.Args[2:])
	case "broker":
		err = broker(ctx, os.Args[2:])
	case instanceCommand: // started by the bench's stateful workloads; not in the usage
		err = runInstance(ctx, os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "eddy: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "eddy:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: eddy <command> [flags]

commands:
  bench    measure eddy's throughput against a hand-written franz-go pipe on one broker
  broker   start a real Apache Kafka broker (KRaft) and run until interrupted
`)
}
