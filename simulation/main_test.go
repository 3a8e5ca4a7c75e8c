package simulation

import (
	"os"
	"testing"

	"github.com/fixfleet/fixfleet/internal/secretscan"
)

// TestMain scans every output the tests kept (secretscan.Dir) for every
// secret they registered, after them.
func TestMain(m *testing.M) { os.Exit(secretscan.Main(m)) }
