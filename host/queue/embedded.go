package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures a NATS server with JetStream inside this process.
type EmbeddedConfig struct {
	// DataDir holds JetStream's file storage (streams, KV, objects). Required.
	DataDir string
	// Listen is the client address "host:port". "" = 127.0.0.1 on the port
	// this data folder used last time (so workers reconnect after a restart),
	// else a random free port. A port of 0 is random.
	Listen string
	// Token is the secret clients must present. It is required when Listen
	// is not a loopback address (StartEmbedded refuses without one).
	Token string
	// ServerName names this server (required in a cluster; default: a
	// name derived from the listen address).
	ServerName string
	// Cluster joins this server to a JetStream cluster (nil = standalone).
	Cluster *ClusterConfig
	// MaxPayload is the largest message accepted (default 8 MiB).
	MaxPayload int32
	// Logger receives the server's warnings and errors (nil = discarded).
	Logger *slog.Logger
}

// ClusterConfig makes an embedded server one node of a NATS cluster.
type ClusterConfig struct {
	Name   string   // the cluster's name, the same on every node
	Listen string   // this node's route address "host:port" (port 0 = random)
	Routes []string // the other nodes' route URLs, nats-route://host:port
}

// Embedded is a running embedded NATS server.
type Embedded struct {
	srv   *server.Server
	cfg   EmbeddedConfig
	url   string
	token string
}

// portFile remembers the client port a data folder's server listened on.
const portFile = "nats-port"

// StartEmbedded starts a NATS server with JetStream storing in cfg.DataDir
// and waits until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embedded NATS: a data folder is required")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	listen := cfg.Listen
	remembered := false
	if listen == "" {
		listen = "127.0.0.1:0"
		if b, err := os.ReadFile(filepath.Join(cfg.DataDir, portFile)); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 0 {
				listen, remembered = "127.0.0.1:"+strconv.Itoa(p), true
			}
		}
	}
	host, port, err := splitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: listen address %q: %w", listen, err)
	}
	if !isLoopbackHost(host) && cfg.Token == "" {
		return nil, fmt.Errorf("embedded NATS: refusing to listen on %s without a token (set %s)", listen, EnvNATSToken)
	}
	e, err := startServer(cfg, host, port)
	if err != nil && remembered {
		e, err = startServer(cfg, host, 0) // the remembered port is taken: any port will do
	}
	if err != nil {
		return nil, err
	}
	if addr, ok := e.srv.Addr().(*net.TCPAddr); ok {
		_ = os.WriteFile(filepath.Join(cfg.DataDir, portFile), []byte(strconv.Itoa(addr.Port)+"\n"), 0o600)
	}
	return e, nil
}

func startServer(cfg EmbeddedConfig, host string, port int) (*Embedded, error) {
	if port == 0 {
		port = server.RANDOM_PORT
	}
	maxPayload := cfg.MaxPayload
	if maxPayload <= 0 {
		maxPayload = 8 << 20
	}
	opts := &server.Options{
		ServerName:    cfg.ServerName,
		Host:          host,
		Port:          port,
		NoSigs:        true,
		NoLog:         cfg.Logger == nil,
		JetStream:     true,
		StoreDir:      cfg.DataDir,
		MaxPayload:    maxPayload,
		Authorization: cfg.Token,
	}
	if cfg.Cluster != nil {
		ch, cp, err := splitHostPort(cfg.Cluster.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: cluster address %q: %w", cfg.Cluster.Listen, err)
		}
		if cp == 0 {
			cp = server.RANDOM_PORT
		}
		opts.Cluster = server.ClusterOpts{Name: cfg.Cluster.Name, Host: ch, Port: cp}
		if len(cfg.Cluster.Routes) > 0 {
			opts.Routes = server.RoutesFromStr(strings.Join(cfg.Cluster.Routes, ","))
		}
		if opts.ServerName == "" {
			return nil, errors.New("embedded NATS: a clustered server needs a ServerName")
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if cfg.Logger != nil {
		srv.SetLogger(slogAdapter{cfg.Logger}, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS: not accepting connections on %s:%d", host, port)
	}
	return &Embedded{srv: srv, cfg: cfg, url: srv.ClientURL(), token: cfg.Token}, nil
}

// ClientURL is the URL clients connect to (without the token).
func (e *Embedded) ClientURL() string { return e.url }

// Token is the token clients must present ("" = none).
func (e *Embedded) Token() string { return e.token }

// Server is the underlying server, for tests and monitoring.
func (e *Embedded) Server() *server.Server { return e.srv }

// ClusterURL is this node's route URL, for the other nodes' Routes.
func (e *Embedded) ClusterURL() string {
	if a := e.srv.ClusterAddr(); a != nil {
		return "nats-route://" + a.String()
	}
	return ""
}

// Shutdown stops the server and waits until it has.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// slogAdapter passes the server's notices, warnings and errors to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(f string, v ...any) { a.l.Debug("nats: " + fmt.Sprintf(f, v...)) }
func (a slogAdapter) Warnf(f string, v ...any)   { a.l.Warn("nats: " + fmt.Sprintf(f, v...)) }
func (a slogAdapter) Fatalf(f string, v ...any)  { a.l.Error("nats: " + fmt.Sprintf(f, v...)) }
func (a slogAdapter) Errorf(f string, v ...any)  { a.l.Error("nats: " + fmt.Sprintf(f, v...)) }
func (a slogAdapter) Debugf(string, ...any)      {}
func (a slogAdapter) Tracef(string, ...any)      {}
