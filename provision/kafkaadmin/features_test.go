package kafkaadmin

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// featureCluster is two brokers whose ApiVersions report metadata.version
// as the test sets it, and whose UpdateFeatures finalises the level asked
// unless a node does not support it (as Kafka's controller refuses).
type featureCluster struct {
	mu        sync.Mutex
	supported map[int32]int16 // by node
	finalized int16
	asked     []kmsg.UpdateFeaturesRequestFeatureUpdate
}

func newFeatureCluster(t *testing.T, supported map[int32]int16, finalized int16) (*featureCluster, *Admin) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	fc := &featureCluster{supported: supported, finalized: finalized}
	c.ControlKey(int16(kmsg.ApiVersions), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.ApiVersionsRequest)
		res := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		if req.Version >= 3 && (req.ClientSoftwareName == "" || req.ClientSoftwareVersion == "") {
			// As Kafka's brokers answer it.
			res.ErrorCode = kerr.InvalidRequest.Code
			return res, nil, true
		}
		for _, k := range []int16{int16(kmsg.ApiVersions), int16(kmsg.Metadata), int16(kmsg.UpdateFeatures)} {
			v := kmsg.NewApiVersionsResponseApiKey()
			v.ApiKey, v.MaxVersion = k, maxFor(k)
			res.ApiKeys = append(res.ApiKeys, v)
		}
		fc.mu.Lock()
		defer fc.mu.Unlock()
		s := kmsg.NewApiVersionsResponseSupportedFeature()
		s.Name, s.MinVersion, s.MaxVersion = MetadataVersion, 1, fc.supported[c.CurrentNode()]
		res.SupportedFeatures = append(res.SupportedFeatures, s)
		f := kmsg.NewApiVersionsResponseFinalizedFeature()
		f.Name, f.MinVersionLevel, f.MaxVersionLevel = MetadataVersion, fc.finalized, fc.finalized
		res.FinalizedFeatures = append(res.FinalizedFeatures, f)
		return res, nil, true
	})
	c.ControlKey(int16(kmsg.UpdateFeatures), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.UpdateFeaturesRequest)
		res := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
		fc.mu.Lock()
		defer fc.mu.Unlock()
		for _, u := range req.FeatureUpdates {
			fc.asked = append(fc.asked, u)
			for _, s := range fc.supported {
				if u.MaxVersionLevel > s {
					res.ErrorCode = kerr.InvalidUpdateVersion.Code
					msg := "a node does not support it"
					res.ErrorMessage = &msg
					return res, nil, true
				}
			}
			fc.finalized = u.MaxVersionLevel
		}
		return res, nil, true
	})
	var d net.Dialer
	a := NewWithControllers(c.ListenAddrs(), d.DialContext)
	t.Cleanup(a.Close)
	return fc, a
}

func maxFor(k int16) int16 {
	switch k {
	case int16(kmsg.ApiVersions):
		return 3
	case int16(kmsg.Metadata):
		return 12
	}
	return 1
}

// The level a cluster may use is the lowest highest-level of its nodes:
// one node still on the old release holds metadata.version where it is.
func TestFeatureIsWhatEveryNodeSupports(t *testing.T) {
	ctx := context.Background()
	fc, a := newFeatureCluster(t, map[int32]int16{0: 21, 1: 27}, 21)
	f, err := a.Feature(ctx, MetadataVersion)
	if err != nil {
		t.Fatal(err)
	}
	if f.Finalized != 21 || f.Supported != 21 || f.Nodes != 2 {
		t.Fatalf("with one old node: %+v, want finalized 21, supported 21 on 2 nodes", f)
	}
	if err := a.UpgradeFeature(ctx, MetadataVersion, 27); err == nil || !strings.Contains(err.Error(), "a node does not support it") {
		t.Fatalf("upgrade past an old node: %v, want the controller's refusal", err)
	}
	fc.mu.Lock()
	fc.supported[0] = 27
	fc.mu.Unlock()
	if f, err = a.Feature(ctx, MetadataVersion); err != nil || f.Supported != 27 {
		t.Fatalf("all nodes new: %+v, %v", f, err)
	}
	if err := a.UpgradeFeature(ctx, MetadataVersion, f.Supported); err != nil {
		t.Fatal(err)
	}
	if f, err = a.Feature(ctx, MetadataVersion); err != nil || f.Finalized != 27 {
		t.Fatalf("after the upgrade: %+v, %v", f, err)
	}
	last := fc.asked[len(fc.asked)-1]
	if last.UpgradeType != 1 || last.AllowDowngrade {
		t.Errorf("asked %+v, want an upgrade that never downgrades", last)
	}
}
