package fakewa

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"go.mau.fi/whatsmeow"
)

// Info is what a standalone server prints for clients in other processes.
type Info struct {
	Addr    string `json:"addr"`     // websocket listener
	Control string `json:"control"`  // control API listener
	CAPEM   string `json:"ca_pem"`   // certificate to trust
	RootKey string `json:"root_key"` // hex of the Noise certificate root
}

// Info describes this server; control is the control API's address.
func (s *Server) Info(control string) Info {
	k := s.RootKey()
	return Info{Addr: s.Addr(), Control: control, CAPEM: string(s.CACertPEM()), RootKey: hex.EncodeToString(k[:])}
}

// Remote points clients at a server running in another process.
type Remote struct {
	client *http.Client
	root   [32]byte
}

// LoadRemote reads the Info a standalone server wrote to path.
func LoadRemote(path string) (*Remote, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var info Info
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, fmt.Errorf("fakewa: reading %s: %w", path, err)
	}
	pool, err := CertPoolFromPEM([]byte(info.CAPEM))
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(info.RootKey)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("fakewa: bad root key in %s", path)
	}
	return &Remote{client: DialClient(info.Addr, pool), root: [32]byte(key)}, nil
}

// Configure points cli at the remote server (websocket, pre-login and
// media requests) and installs its root key (once per process).
func (r *Remote) Configure(cli *whatsmeow.Client) error {
	if err := installRootKey(r.root); err != nil {
		return err
	}
	cli.SetWebsocketHTTPClient(r.client)
	cli.SetPreLoginHTTPClient(r.client)
	cli.SetMediaHTTPClient(r.client)
	return nil
}

// Prepare is Configure under the name session.Connector asks for: it makes
// the remote server a session.Connector, as the demo build uses it.
func (r *Remote) Prepare(cli *whatsmeow.Client) error { return r.Configure(cli) }
