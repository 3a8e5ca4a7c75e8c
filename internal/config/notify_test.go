package config

import (
	"strings"
	"testing"
)

const notifyBase = "version: 1\nincident: {profile: crowdstrike-2024-07-19}\ntenants:\n  - name: lab\n    accounts:\n      - {name: sim, provider: sim}\n"

func TestNotify(t *testing.T) {
	const slackURL = "https://hooks.slack.example/services/T000/B000/XXXXSECRET"
	getenv := env(map[string]string{
		"SLACK_HOOK": slackURL,
		"TEAMS_HOOK": "https://example.webhook.office.example/webhookb2/SECRETTEAMS",
		"PLAIN_HTTP": "http://hooks.example/SECRETHTTP",
		"NOT_A_URL":  "SECRETJUNK",
	})
	tests := []struct {
		name    string
		notify  string
		want    []string // kinds loaded
		wantErr string
	}{
		{"absent", "", nil, ""},
		{"both", "notify:\n  - {kind: slack, url_env: SLACK_HOOK}\n  - {kind: teams, url_env: TEAMS_HOOK}\n", []string{"slack", "teams"}, ""},
		{"unknown kind", "notify:\n  - {kind: discord, url_env: SLACK_HOOK}\n", nil, "notify[0].kind: must be slack or teams"},
		{"unknown key", "notify:\n  - {kind: slack, url: https://x}\n", nil, "url"},
		{"no url_env", "notify:\n  - {kind: slack}\n", nil, "notify[0].url_env: required"},
		{"unset", "notify:\n  - {kind: slack, url_env: NOPE}\n", nil, "environment variable NOPE is not set"},
		{"a URL instead of a name", "notify:\n  - {kind: slack, url_env: 'https://hooks.slack.example/SECRETINLINE'}\n", nil, "give the variable's name, not the URL"},
		{"http", "notify:\n  - {kind: teams, url_env: PLAIN_HTTP}\n", nil, "does not hold an https URL"},
		{"junk", "notify:\n  - {kind: teams, url_env: NOT_A_URL}\n", nil, "does not hold an https URL"},
		{"not a list", "notify: {kind: slack}\n", nil, "notify: must be a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(notifyBase+tt.notify), "fleet.yaml", t.TempDir(), fakeRegistry{}, getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("the error quotes a URL: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, h := range c.Notify {
				kinds = append(kinds, h.Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(tt.want, ",") {
				t.Errorf("kinds %v, want %v", kinds, tt.want)
			}
			if len(c.Notify) > 0 && (c.Notify[0].URL.Reveal() != slackURL || c.Notify[0].URLEnv != "SLACK_HOOK") {
				t.Errorf("first webhook: %+v", c.Notify[0])
			}
		})
	}
}
