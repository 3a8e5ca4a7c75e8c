package clihelp

// UsageError marks an error caused by the user's input (bad flags, bad
// config, a malformed plan or scenario): the operator fixes the input.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// BadInput wraps err as a UsageError (nil stays nil).
func BadInput(err error) error {
	if err == nil {
		return nil
	}
	return UsageError{err}
}
