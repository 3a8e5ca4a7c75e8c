package providers

// Opened is one account scope opened through a Registry: the account as
// configured, and the capabilities its provider offers.
type Opened struct {
	Account  Account
	Provider *Provider
}
