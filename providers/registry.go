package providers

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// Account is one account scope of one tenant, as fleet.yaml gives it.
type Account struct {
	Tenant   string
	Name     string
	Provider string
	Regions  []string
	Zones    []string
	// Options holds the provider-specific keys (credentials references,
	// endpoints, profiles). The provider decodes it strictly: unknown keys
	// are errors that list the valid ones. Nil when absent.
	Options *yaml.Node
}

func (a Account) String() string { return a.Tenant + "/" + a.Name + " (" + a.Provider + ")" }

// Env is what a provider may use from its surroundings. Nothing global:
// the CLI fills it, tests fill it with fakes.
type Env struct {
	// Getenv reads an environment variable (credentials named in config).
	Getenv func(string) string
	Clock  clock.Clock
	// Logger receives a provider's warnings about what it went on without
	// (an optional hint it could not read). nil: discarded.
	Logger *slog.Logger
}

// Spec is one registered provider kind.
type Spec struct {
	// Validate checks an account's scope and options without network
	// access; errors name the field. Nil means nothing to check.
	Validate func(a Account) error
	// Open connects to the account (it may check credentials) and returns
	// its capabilities.
	Open func(ctx context.Context, a Account, env Env) (*Provider, error)
}

// Registry maps provider names to their specs. Build one explicitly; there
// is no global registry.
type Registry struct {
	specs map[string]Spec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{specs: map[string]Spec{}} }

// Register adds a provider kind. Registering a name twice is an error.
func (r *Registry) Register(name string, s Spec) error {
	if _, dup := r.specs[name]; dup {
		return fmt.Errorf("provider %q registered twice", name)
	}
	if s.Open == nil {
		return fmt.Errorf("provider %q: Spec.Open is nil", name)
	}
	r.specs[name] = s
	return nil
}

// Names returns the registered provider names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.specs))
	for n := range r.specs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (r *Registry) spec(name string) (Spec, error) {
	s, ok := r.specs[name]
	if !ok {
		return Spec{}, fmt.Errorf("unknown provider %q: valid providers are %s", name, strings.Join(r.Names(), ", "))
	}
	return s, nil
}

// Validate checks an account against its provider kind, offline.
func (r *Registry) Validate(a Account) error {
	s, err := r.spec(a.Provider)
	if err != nil {
		return err
	}
	if s.Validate == nil {
		return nil
	}
	return s.Validate(a)
}

// Open validates and opens an account.
func (r *Registry) Open(ctx context.Context, a Account, env Env) (*Provider, error) {
	s, err := r.spec(a.Provider)
	if err != nil {
		return nil, err
	}
	if s.Validate != nil {
		if err := s.Validate(a); err != nil {
			return nil, fmt.Errorf("account %s: %w", a, err)
		}
	}
	p, err := s.Open(ctx, a, env)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", a, err)
	}
	if p.Name == "" {
		p.Name = a.Provider
	}
	return p, nil
}

// CheckZones is a Validate helper: every zone in a must be in valid.
func CheckZones(a Account, valid []string) error {
	ok := map[string]bool{}
	for _, z := range valid {
		ok[z] = true
	}
	for _, z := range a.Zones {
		if !ok[z] {
			return fmt.Errorf("zones: %q is not a %s zone; valid zones are %s", z, a.Provider, strings.Join(valid, ", "))
		}
	}
	return nil
}
