package azure_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/fixfleet/fixfleet/providers/azure"
)

// TestKeyVaultKeys: recovery passwords tagged with their protector ID are
// found by that ID (any case, braces or not); ADE key files and malformed
// values are listed as unusable, with the reason and without the value.
func TestKeyVaultKeys(t *testing.T) {
	const pw = "111111-222222-333333-444444-555555-666666-777777-888888"
	values := map[string]string{"web01-c": pw, "web02-c": "not-a-password", "ade-web03": "QkVLIGZpbGUgY29udGVudA=="}
	tags := map[string]map[string]string{
		"web01-c":   {azure.TagKeyID: "{1a2b3c4d-0000-4000-8000-00000000000a}", azure.TagADEMachine: "web01", azure.TagADEVolume: "C:"},
		"web02-c":   {azure.TagKeyID: "2B2B3C4D-0000-4000-8000-00000000000B"},
		"ade-web03": {azure.TagADEKeyFile: "3C3C3C3C-0000-4000-8000-00000000000C.BEK", azure.TagADEMachine: "web03", azure.TagADEVolume: "C:"},
		"unrelated": {"app": "web"},
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Bearer authorization="https://login.microsoftonline.com/tenant", resource="https://vault.azure.net"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		base := "https://" + r.Host + "/secrets/"
		if r.URL.Path == "/secrets" {
			var items []map[string]any
			for name, tg := range tags {
				items = append(items, map[string]any{"id": base + name, "attributes": map[string]any{"enabled": true}, "tags": tg})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"value": items})
			return
		}
		name := strings.Trim(strings.TrimPrefix(r.URL.Path, "/secrets/"), "/")
		v, ok := values[name]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"SecretNotFound","message":"no such secret"}}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": base + name + "/v1", "value": v, "tags": tags[name]})
	}))
	defer srv.Close()
	opts := &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: srv.Client()}, DisableChallengeResourceVerification: true}
	k, err := azure.LoadKeyVaultKeys(t.Context(), []string{srv.URL}, staticToken{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1A2B3C4D-0000-4000-8000-00000000000A", "{1a2b3c4d-0000-4000-8000-00000000000a}"} {
		if got, ok := k.Key(id); !ok || got.Reveal() != pw {
			t.Errorf("Key(%s): found %v, want the recovery password", id, ok)
		}
	}
	if _, ok := k.Key("3C3C3C3C-0000-4000-8000-00000000000C"); ok || k.Len() != 1 {
		t.Errorf("an ADE key file was returned as a recovery password (%d keys)", k.Len())
	}
	un := k.Unusable()
	if len(un) != 2 || un[0].Secret != "ade-web03" || un[0].Machine != "web03" || !strings.Contains(un[0].Reason, "BEK") ||
		un[1].Secret != "web02-c" || !strings.Contains(un[1].Reason, "48-digit") {
		t.Errorf("Unusable = %+v", un)
	}
	for _, u := range un {
		if strings.Contains(u.Reason+u.Secret+u.KeyID, "not-a-password") || strings.Contains(u.Reason, "QkVL") {
			t.Errorf("Unusable carries a secret value: %+v", u)
		}
	}
}
