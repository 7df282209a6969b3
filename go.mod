module github.com/trafficlab/trafficlab

go 1.26.0

require (
	github.com/aymanbagabas/go-udiff v0.4.1
	github.com/hashicorp/go-multierror v1.1.1
	github.com/pkg/sftp v1.13.12
	github.com/spf13/cobra v1.10.2
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/crypto v0.59.0
)

require (
	github.com/hashicorp/errwrap v1.0.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/kr/fs v0.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
