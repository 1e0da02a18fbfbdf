package window_test

import (
	"fmt"
	"log"
	"time"

	"github.com/eddystream/eddy/serde"
	"github.com/eddystream/eddy/window"
)

// Hopping windows of five minutes that advance by one minute: a record at
// 00:06 falls in the five windows that started in the last five minutes.
func ExampleTimeWindows_WindowsFor() {
	tumbling, err := window.TimeWindowsOfSizeAndGrace(5*time.Minute, 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	hopping, err := tumbling.AdvanceBy(time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	for _, w := range hopping.WindowsFor(time.Date(1970, 1, 1, 0, 6, 0, 0, time.UTC)) {
		fmt.Println(w.Start().Format("15:04"), "to", w.End().Format("15:04"))
	}
	fmt.Println("retention:", hopping.Retention())
	// Output:
	// 00:02 to 00:07
	// 00:03 to 00:08
	// 00:04 to 00:09
	// 00:05 to 00:10
	// 00:06 to 00:11
	// retention: 5m30s
}

// A windowed key as a Kafka Streams application writes it to a topic: the
// key, then the window start in milliseconds.
func ExampleTimeWindowedSerde() {
	s, err := window.TimeWindowedSerde(serde.String(), 5*time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	w, err := window.NewTimeWindow(300000, 600000)
	if err != nil {
		log.Fatal(err)
	}
	b, err := s.Serialize("counts", window.Windowed[string]{Key: "A", Window: w})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%x\n", b)
	back, err := s.Deserialize("counts", b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(back)
	// Output:
	// 4100000000000493e0
	// [A@300000/600000]
}
