// Package proto holds the hwe.runner.v1 gRPC contract between the host and
// runner plugins. The generated Go code is committed, so building hwe never
// needs protoc; regenerate after editing the .proto with `go generate`
// (needs protoc, protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.5.1).
package proto

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative hwe/runner/v1/runner.proto
