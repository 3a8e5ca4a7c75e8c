package notify

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fixfleet/fixfleet/internal/render"
)

// Event is what a message is about.
type Event string

// Message events, in the order a run usually sends them.
const (
	EvRunStarted    Event = "run-started"
	EvCanaryPassed  Event = "canary-passed"
	EvCanaryFailed  Event = "canary-failed"
	EvBrakeTripped  Event = "brake-tripped"
	EvBreakerOpen   Event = "breaker-open"
	EvBreakerClosed Event = "breaker-closed"
	EvTenantDone    Event = "tenant-done"
	EvRunDone       Event = "run-done"
	EvRunPaused     Event = "run-paused"
)

// Level is how much a message needs attention.
type Level int

// Levels.
const (
	Info Level = iota
	Good
	Warning
	Alert
)

// Message is one notification.
type Message struct {
	Event  Event
	Level  Level
	RunID  string
	Tenant string // the tenant of EvTenantDone
	Title  string
	Text   string
}

// slackEscaper makes text literal in Slack's mrkdwn (no links, mentions
// or channel pings can be formed).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

var levelEmoji = map[Level]string{Info: ":information_source:", Good: ":white_check_mark:", Warning: ":warning:", Alert: ":rotating_light:"}

var levelColor = map[Level]string{Info: "Default", Good: "Good", Warning: "Warning", Alert: "Attention"}

// Payload is the JSON body a webhook of kind k takes for m: Slack's
// {"text": …} in mrkdwn, or a Teams message holding an Adaptive Card.
// Text is cleaned of control characters and escaped for the dialect.
func Payload(k Kind, m Message) ([]byte, error) {
	title, text := render.Text(m.Title), cleanLines(m.Text)
	switch k {
	case Slack:
		s := levelEmoji[m.Level] + " *" + slackEscaper.Replace(title) + "*"
		if text != "" {
			s += "\n" + slackEscaper.Replace(text)
		}
		return json.Marshal(map[string]string{"text": s})
	case Teams:
		body := []map[string]any{
			{"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true, "color": levelColor[m.Level]},
		}
		if text != "" {
			body = append(body, map[string]any{"type": "TextBlock", "text": text, "wrap": true})
		}
		return json.Marshal(map[string]any{
			"type": "message",
			"attachments": []map[string]any{{
				"contentType": "application/vnd.microsoft.card.adaptive",
				"content": map[string]any{
					"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
					"type":    "AdaptiveCard",
					"version": "1.4",
					"body":    body,
				},
			}},
		})
	}
	return nil, fmt.Errorf("no webhook kind %q (slack or teams)", k)
}

// cleanLines cleans each line of s of control characters, keeping the
// newlines.
func cleanLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = render.Text(l)
	}
	return strings.Join(lines, "\n")
}
