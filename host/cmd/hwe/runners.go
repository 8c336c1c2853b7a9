package main

import (
	"github.com/hwe-run/hwe/host/config"
	"github.com/hwe-run/hwe/host/registry"
	luarunner "github.com/hwe-run/hwe/plugins/lua"
)

// runners builds the registry of every runner for a configuration.
func runners(cfg *config.Config) (*registry.Registry, error) {
	reg := registry.New()
	reg.Register(luarunner.New(luarunner.Options{}))
	return reg, nil
}
