package changelog_test

import (
	"fmt"

	"github.com/eddystream/eddy/changelog"
)

func ExampleTopicName() {
	fmt.Println(changelog.TopicName("shop", "counts"))
	// Output: shop-counts-changelog
}
