package kafkaadmin

import (
	"context"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MetadataVersion is the KRaft feature that decides which metadata records
// and protocol the cluster uses: it stays at its level through a rolling
// upgrade and is raised only when every node runs the new release.
const MetadataVersion = "metadata.version"

// Feature is one cluster feature as the nodes report it (ApiVersions).
type Feature struct {
	Name string
	// Finalized is the level the cluster uses, the lowest any node
	// reports while a change spreads (0: none finalised).
	Finalized int16
	// Supported is the highest level every node that answered supports.
	Supported int16
	// Nodes is how many nodes reported the feature.
	Nodes int
}

// franz is a franz-go client for the bootstrap addresses through the
// Admin's dialer: for the requests kafka-go does not have.
func (a *Admin) franz() (*kgo.Client, error) {
	return kgo.NewClient(
		kgo.SeedBrokers(a.bootstrap...),
		kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) { return a.dial(ctx, network, host) }),
		kgo.ClientID("trafficlab-provision"),
		kgo.RetryTimeout(0),
	)
}

// Feature asks every bootstrap address on its own which levels of the
// feature it supports and which is finalised. A node that does not
// answer is an error: a level only some nodes support must not be
// finalised.
func (a *Admin) Feature(ctx context.Context, name string) (Feature, error) {
	cl, err := a.franz()
	if err != nil {
		return Feature{}, fmt.Errorf("kafka feature %s: %w", name, err)
	}
	defer cl.Close()
	req := kmsg.NewPtrApiVersionsRequest()
	// Brokers refuse an ApiVersions v3+ without a valid client name.
	req.ClientSoftwareName, req.ClientSoftwareVersion = "trafficlab-provision", "1"
	f := Feature{Name: name, Supported: -1, Finalized: -1}
	for i, b := range cl.SeedBrokers() {
		r, err := b.Request(ctx, req)
		if err != nil {
			return Feature{}, fmt.Errorf("kafka feature %s: ask %s: %w", name, a.bootstrap[i], err)
		}
		res := r.(*kmsg.ApiVersionsResponse)
		if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
			return Feature{}, fmt.Errorf("kafka feature %s: %s: %w", name, a.bootstrap[i], err)
		}
		top := int16(-1)
		for _, s := range res.SupportedFeatures {
			if s.Name == name {
				top = s.MaxVersion
			}
		}
		if top < 0 {
			continue // a node that does not know the feature has no say
		}
		if f.Supported < 0 || top < f.Supported {
			f.Supported = top
		}
		for _, fin := range res.FinalizedFeatures {
			if fin.Name == name && (f.Finalized < 0 || fin.MaxVersionLevel < f.Finalized) {
				f.Finalized = fin.MaxVersionLevel
			}
		}
		f.Nodes++
	}
	f.Supported, f.Finalized = max(f.Supported, 0), max(f.Finalized, 0)
	return f, nil
}

// UpgradeFeature finalises the feature at level (UpdateFeatures, what
// kafka-features.sh upgrade does); a broker forwards it to the active
// controller, which refuses a level some node does not support.
func (a *Admin) UpgradeFeature(ctx context.Context, name string, level int16) error {
	cl, err := a.franz()
	if err != nil {
		return fmt.Errorf("upgrade %s: %w", name, err)
	}
	defer cl.Close()
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = 30000
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature, u.MaxVersionLevel, u.UpgradeType = name, level, 1 // 1: upgrade only
	req.FeatureUpdates = append(req.FeatureUpdates, u)
	res, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("upgrade %s to level %d: %w", name, level, err)
	}
	if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
		return fmt.Errorf("upgrade %s to level %d: %w%s", name, level, err, message(res.ErrorMessage))
	}
	for _, r := range res.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("upgrade %s to level %d: %w%s", r.Feature, level, err, message(r.ErrorMessage))
		}
	}
	return nil
}

func message(m *string) string {
	if m == nil || *m == "" {
		return ""
	}
	return ": " + *m
}
