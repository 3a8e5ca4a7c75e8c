package azureapi

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
)

// The emulator is also a fake Microsoft Entra ID authority (an "authority
// host" pointed at it), so that a fleet.yaml drill opens its accounts with
// the provider's production credential (DefaultAzureCredential, from
// AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET): it serves a
// tenant's OpenID configuration and a client-credentials token endpoint
// that hands any client a bearer token ARM then accepts. Nothing is
// checked but the shape of the request.

// serveEntra answers the authority's paths; false if r is not one.
func (s *Server) serveEntra(rw http.ResponseWriter, r *http.Request) bool {
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(seg) == 4 && seg[1] == "v2.0" && seg[2] == ".well-known" && seg[3] == "openid-configuration" && r.Method == http.MethodGet:
		s.count("Entra.OpenIDConfiguration")
		base := "https://" + r.Host + "/" + seg[0]
		writeJSON(rw, 200, obj{
			"issuer":                 base + "/v2.0",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"token_endpoint":         base + "/oauth2/v2.0/token",
		})
		return true
	case len(seg) == 4 && seg[1] == "oauth2" && seg[2] == "v2.0" && seg[3] == "token" && r.Method == http.MethodPost:
		s.count("Entra.Token")
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") == "" {
			writeJSON(rw, 400, obj{"error": "invalid_request", "error_description": "the emulator serves the client-credentials grant only"})
			return true
		}
		writeJSON(rw, 200, obj{"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": "simulator-" + seg[0]})
		return true
	}
	return false
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(v)
}

// CertPEM is the emulator's certificate in PEM, for a client to trust
// (a drill's fleet.yaml names it as the account's ca_file).
func (s *Server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cert.Raw})
}
