package main

import (
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/provision/health"
)

func TestConsumerDetail(t *testing.T) {
	for _, tc := range []struct{ page, want string }{
		{`trafficlab_consumer_group_generation 4
trafficlab_consumer_assigned_partitions 3
trafficlab_consumer_lag_messages{partition="10"} 5
trafficlab_consumer_lag_messages{partition="2"} 0
trafficlab_consumer_lag_messages{partition="4"} 7
`, "partitions 2,4,10 (group generation 4), lag 12 messages"},
		// A partition just assigned has no lag sample until its worker fetched.
		{`trafficlab_consumer_group_generation 5
trafficlab_consumer_assigned_partitions 2
trafficlab_consumer_lag_messages{partition="1"} 0
`, "2 partitions (group generation 5), lag 0 messages"},
		// More consumers than partitions: this one waits, idle.
		{`trafficlab_consumer_group_generation 6
trafficlab_consumer_assigned_partitions 0
`, "no partitions (group generation 6), lag 0 messages"},
	} {
		m, err := health.ParseMetrics(strings.NewReader(tc.page), "trafficlab_consumer_lag_messages",
			"trafficlab_consumer_assigned_partitions", "trafficlab_consumer_group_generation")
		if err != nil {
			t.Fatal(err)
		}
		if got := consumerDetail(m); got != tc.want {
			t.Errorf("consumerDetail = %q, want %q", got, tc.want)
		}
	}
}
