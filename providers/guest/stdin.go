package guest

import (
	"context"
	"io"
	"sync"

	"github.com/masterzen/winrm"
)

// copyBuffer is the buffer a command's output streams are copied through
// (io.Copy's default is 32 KiB for each stream of every command; a
// script's output is a small JSON document).
const copyBuffer = 4 << 10

// runWithInput runs line in a new shell with stdin as its standard input,
// like masterzen's RunWithContextWithInput but with one difference that
// matters to a guest that goes away mid-command: masterzen ignores a failed
// stdin send and still sends end-of-input, so the script may start with
// its parameters missing. Here a failed send stops the command before
// end-of-input is sent (the error is ErrUnreachable), so a script never
// runs on parameters it did not receive whole.
func runWithInput(ctx context.Context, wc *winrm.Client, line string, stdout, stderr io.Writer, stdin []byte) (int, error) {
	shell, err := wc.CreateShell()
	if err != nil {
		return 1, err
	}
	defer shell.Close()
	cmd, err := shell.ExecuteWithContext(ctx, line)
	if err != nil {
		return 1, err
	}
	if _, err := cmd.Stdin.Write(stdin); err != nil {
		return 1, stopped(ctx, cmd, "sending the script's parameters failed: "+err.Error())
	}
	if err := cmd.Stdin.Close(); err != nil {
		return 1, stopped(ctx, cmd, "ending the script's input failed: "+err.Error())
	}
	var wg sync.WaitGroup
	var outErr, errErr error
	wg.Add(2)
	go func() { defer wg.Done(); _, outErr = io.CopyBuffer(stdout, cmd.Stdout, make([]byte, copyBuffer)) }()
	go func() { defer wg.Done(); _, errErr = io.CopyBuffer(stderr, cmd.Stderr, make([]byte, copyBuffer)) }()
	cmd.Wait()
	wg.Wait()
	_ = cmd.Close()
	if err := ctx.Err(); err != nil {
		return 1, err
	}
	if outErr != nil {
		return 1, outErr
	}
	return cmd.ExitCode(), errErr
}

// stopped ends a command whose input could not be sent whole: ctx's error
// when it was cancelled, else ErrUnreachable.
func stopped(ctx context.Context, cmd *winrm.Command, msg string) error {
	_ = cmd.Close()
	if err := ctx.Err(); err != nil {
		return &classError{cause: err, msg: msg}
	}
	return &classError{class: ErrUnreachable, msg: msg}
}
