package plugin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hwe-run/hwe/host/api"
	runnerv1 "github.com/hwe-run/hwe/host/plugin/proto/hwe/runner/v1"
)

// hostServer serves hwe.runner.v1 Host to one plugin process. One server
// carries the host API for every run in flight in that process: each Run
// registers its api.Host under a random token, and the plugin names the token
// in every call. Calls with an unknown token (a run that has finished, or a
// guess) are refused. One long-lived broker connection per process, instead
// of one per run, keeps a step's overhead near a single gRPC round trip.
type hostServer struct {
	runnerv1.UnimplementedHostServer

	mu   sync.Mutex
	runs map[string]api.Host
}

func newHostServer() *hostServer {
	return &hostServer{runs: make(map[string]api.Host)}
}

// register makes h reachable from the plugin until done is called.
func (s *hostServer) register(h api.Host) (token string, done func()) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token = hex.EncodeToString(b[:])
	if h == nil {
		h = api.NopHost{}
	}
	s.mu.Lock()
	s.runs[token] = h
	s.mu.Unlock()
	return token, func() {
		s.mu.Lock()
		delete(s.runs, token)
		s.mu.Unlock()
	}
}

func (s *hostServer) lookup(token string) (api.Host, error) {
	s.mu.Lock()
	h, ok := s.runs[token]
	s.mu.Unlock()
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "host API call for a run that is not running")
	}
	return h, nil
}

func (s *hostServer) Log(_ context.Context, req *runnerv1.LogRequest) (*runnerv1.LogResponse, error) {
	h, err := s.lookup(req.HostToken)
	if err != nil {
		return nil, err
	}
	h.Log(req.Stream, req.Line)
	return &runnerv1.LogResponse{}, nil
}

func (s *hostServer) Progress(_ context.Context, req *runnerv1.ProgressRequest) (*runnerv1.ProgressResponse, error) {
	h, err := s.lookup(req.HostToken)
	if err != nil {
		return nil, err
	}
	h.Progress(req.Fraction, req.Message)
	return &runnerv1.ProgressResponse{}, nil
}

func (s *hostServer) HTTPFetch(ctx context.Context, req *runnerv1.HTTPFetchRequest) (*runnerv1.HTTPFetchResponse, error) {
	h, err := s.lookup(req.HostToken)
	if err != nil {
		return nil, err
	}
	resp, err := h.HTTPFetch(ctx, api.HTTPRequest{Method: req.Method, URL: req.Url, Headers: req.Headers, Body: req.Body})
	if err != nil {
		return &runnerv1.HTTPFetchResponse{Error: errorToProto(err)}, nil
	}
	return &runnerv1.HTTPFetchResponse{Status: int32(resp.Status), Headers: resp.Headers, Body: resp.Body}, nil
}

func (s *hostServer) KVGet(ctx context.Context, req *runnerv1.KVGetRequest) (*runnerv1.KVGetResponse, error) {
	h, err := s.lookup(req.HostToken)
	if err != nil {
		return nil, err
	}
	value, found, err := h.KVGet(ctx, req.Key)
	if err != nil {
		return &runnerv1.KVGetResponse{Error: errorToProto(err)}, nil
	}
	return &runnerv1.KVGetResponse{Value: value, Found: found}, nil
}

func (s *hostServer) KVPut(ctx context.Context, req *runnerv1.KVPutRequest) (*runnerv1.KVPutResponse, error) {
	h, err := s.lookup(req.HostToken)
	if err != nil {
		return nil, err
	}
	return &runnerv1.KVPutResponse{Error: errorToProto(h.KVPut(ctx, req.Key, req.Value))}, nil
}

func (s *hostServer) Secret(ctx context.Context, req *runnerv1.SecretRequest) (*runnerv1.SecretResponse, error) {
	h, err := s.lookup(req.HostToken)
	if err != nil {
		return nil, err
	}
	value, err := h.Secret(ctx, req.Name)
	if err != nil {
		return &runnerv1.SecretResponse{Error: errorToProto(err)}, nil
	}
	return &runnerv1.SecretResponse{Value: value}, nil
}
