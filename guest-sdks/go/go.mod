module github.com/hwe-run/hwe/guest-sdks/go

go 1.24
