package main

import (
	"context"

	"github.com/trafficlab/trafficlab/provision/health"
	"github.com/trafficlab/trafficlab/provision/verify"
)

// components are verify's checks of the roles beyond the built-in ones.
var components = []func(ctx context.Context, env *verify.Env) health.Rows{}
