package local_test

import (
	"fmt"

	"github.com/ckptio/ckptio/collective"
	"github.com/ckptio/ckptio/collective/local"
)

func ExampleRun() {
	err := local.Run(3, func(c collective.Comm) error {
		send := []byte{byte('a' + c.Rank())}
		var recv []byte
		var counts, displs []int
		if c.Rank() == 0 {
			recv, counts, displs = make([]byte, 3), []int{1, 1, 1}, []int{2, 1, 0}
		}
		if err := c.Gatherv(send, recv, counts, displs, 0); err != nil {
			return err
		}
		if c.Rank() == 0 {
			fmt.Printf("%s\n", recv)
		}
		return nil
	})
	fmt.Println(err)
	// Output:
	// cba
	// <nil>
}
