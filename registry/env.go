package registry

import (
	"errors"
	"fmt"
	"strings"
)

// meshEnvNames are the single-mailbox shorthand variables ApplyMeshEnv reads.
var meshEnvNames = []string{"MESH_URL", "MESH_MAILBOX_ID", "MESH_MAILBOX_PASSWORD", "MESH_SHARED_KEY", "MESH_CLIENT_CERT", "MESH_CLIENT_KEY", "MESH_CA_CERT"}

// ApplyMeshEnv adds or overrides one mailbox from the MESH_* shorthand
// variables, so a single-mailbox deployment needs no mailboxes section.
// MESH_MAILBOX_ID names the mailbox; for an existing mailbox only the
// variables that are set override it, a new one starts from the mesh defaults.
// With no MESH_* variable set it does nothing. Call it before sharing the
// Registry between goroutines.
func (r *Registry) ApplyMeshEnv(getenv func(string) string) error {
	env := make(map[string]string, len(meshEnvNames))
	for _, name := range meshEnvNames {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			env[name] = v
		}
	}
	if len(env) == 0 {
		return nil
	}
	id := strings.ToUpper(env["MESH_MAILBOX_ID"])
	if id == "" {
		return errors.New("registry.ApplyMeshEnv: MESH_MAILBOX_ID is required when other MESH_* variables are set")
	}
	var m Mailbox
	existing, found := r.Mailbox(id)
	if found {
		m = *existing
	} else {
		d := r.Mesh
		m = Mailbox{ID: id, URL: d.URL, SharedKey: d.SharedKey, ClientCert: d.ClientCert, ClientKey: d.ClientKey,
			CACert: d.CACert, ChunkSize: d.ChunkSize, MaxConcurrentSends: d.MaxConcurrentSends}
	}
	override := func(dst *string, name string) {
		if v, ok := env[name]; ok {
			*dst = v
		}
	}
	override(&m.URL, "MESH_URL")
	override(&m.Password, "MESH_MAILBOX_PASSWORD")
	override(&m.SharedKey, "MESH_SHARED_KEY")
	override(&m.ClientCert, "MESH_CLIENT_CERT")
	override(&m.ClientKey, "MESH_CLIENT_KEY")
	override(&m.CACert, "MESH_CA_CERT")

	if problems := validateMailbox("MESH_* mailbox "+id, m); len(problems) > 0 {
		return fmt.Errorf("registry.ApplyMeshEnv: %w", &ValidationError{Problems: problems})
	}
	if found {
		*existing = m
	} else {
		r.Mailboxes = append(r.Mailboxes, m)
	}
	r.reindex()
	return nil
}
