package state_test

import (
	"fmt"
	"log"

	"github.com/eddystream/eddy/state"
)

// A read view, as a query on another goroutine would take it, keeps
// seeing the store as it was while the owner goes on writing.
func ExampleBackend_ReadView() {
	backend, err := state.InMemory().Open("", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	if err := backend.Apply([]state.Write{{Key: []byte("apples"), Value: []byte("3")}}); err != nil {
		log.Fatal(err)
	}

	view, err := backend.ReadView()
	if err != nil {
		log.Fatal(err)
	}
	// The owner writes on.
	if err := backend.Apply([]state.Write{{Key: []byte("apples"), Value: []byte("4")}, {Key: []byte("pears"), Value: []byte("1")}}); err != nil {
		log.Fatal(err)
	}
	read := make(chan string)
	go func() { // a reader on another goroutine
		defer view.Close()
		v, _, _ := view.Get([]byte("apples"))
		_, pears, _ := view.Get([]byte("pears"))
		read <- fmt.Sprintf("view: apples=%s, pears present: %v", v, pears)
	}()
	fmt.Println(<-read)
	v, _, _ := backend.Get([]byte("apples"))
	fmt.Printf("store: apples=%s\n", v)
	// Output:
	// view: apples=3, pears present: false
	// store: apples=4
}
