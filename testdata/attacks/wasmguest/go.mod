module github.com/hwe-run/hwe/testdata/attacks/wasmguest

go 1.24

require github.com/hwe-run/hwe/guest-sdks/go v0.0.0

replace github.com/hwe-run/hwe/guest-sdks/go => ../../../guest-sdks/go
