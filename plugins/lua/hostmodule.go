package lua

import (
	"context"
	"strings"

	"github.com/hwe-run/hwe/host/api"
	glua "github.com/yuin/gopher-lua"
)

// hostModule is the `hwe` table Lua steps use to reach the host API. Every
// call goes to the step's api.Host, which checks it against the step's grant;
// a denied call raises a Lua error naming the capability.
//
//	hwe.log(msg)                   hwe.progress(fraction, msg)
//	hwe.kv_get(key) -> value|nil   hwe.kv_put(key, value)
//	hwe.secret(name) -> string     hwe.http_fetch{url=..., method=..., headers=..., body=...} -> {status, headers, body}
func hostModule(ctx context.Context, L *glua.LState, host api.Host) *glua.LTable {
	m := L.CreateTable(0, 6)
	fail := func(L *glua.LState, err error) int {
		L.RaiseError("%s", err.Error())
		return 0
	}
	m.RawSetString("log", L.NewFunction(func(L *glua.LState) int {
		for _, line := range strings.Split(L.CheckString(1), "\n") { // one log line per line, as the other runners do
			host.Log("log", line)
		}
		return 0
	}))
	m.RawSetString("progress", L.NewFunction(func(L *glua.LState) int {
		f := float64(L.CheckNumber(1))
		if f < 0 || f > 1 || f != f {
			L.ArgError(1, "progress must be a fraction between 0 and 1")
		}
		host.Progress(f, L.OptString(2, ""))
		return 0
	}))
	m.RawSetString("kv_get", L.NewFunction(func(L *glua.LState) int {
		v, found, err := host.KVGet(ctx, L.CheckString(1))
		if err != nil {
			return fail(L, err)
		}
		if !found {
			L.Push(glua.LNil)
		} else {
			L.Push(glua.LString(v))
		}
		return 1
	}))
	m.RawSetString("kv_put", L.NewFunction(func(L *glua.LState) int {
		if err := host.KVPut(ctx, L.CheckString(1), []byte(L.CheckString(2))); err != nil {
			return fail(L, err)
		}
		return 0
	}))
	m.RawSetString("secret", L.NewFunction(func(L *glua.LState) int {
		v, err := host.Secret(ctx, L.CheckString(1))
		if err != nil {
			return fail(L, err)
		}
		L.Push(glua.LString(v))
		return 1
	}))
	m.RawSetString("http_fetch", L.NewFunction(func(L *glua.LState) int {
		req := api.HTTPRequest{Method: "GET"}
		switch a := L.Get(1).(type) {
		case glua.LString:
			req.URL = string(a)
		case *glua.LTable:
			req.URL = glua.LVAsString(a.RawGetString("url"))
			if m := glua.LVAsString(a.RawGetString("method")); m != "" {
				req.Method = m
			}
			req.Body = []byte(glua.LVAsString(a.RawGetString("body")))
			if h, ok := a.RawGetString("headers").(*glua.LTable); ok {
				req.Headers = map[string]string{}
				h.ForEach(func(k, v glua.LValue) { req.Headers[k.String()] = v.String() })
			}
		default:
			L.ArgError(1, "url string or request table expected")
		}
		resp, err := host.HTTPFetch(ctx, req)
		if err != nil {
			return fail(L, err)
		}
		t := L.CreateTable(0, 3)
		t.RawSetString("status", glua.LNumber(resp.Status))
		t.RawSetString("body", glua.LString(resp.Body))
		h := L.CreateTable(0, len(resp.Headers))
		for k, v := range resp.Headers {
			h.RawSetString(k, glua.LString(v))
		}
		t.RawSetString("headers", h)
		L.Push(t)
		return 1
	}))
	return m
}
