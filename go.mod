module github.com/hwe-run/hwe

go 1.26
