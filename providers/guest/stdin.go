package guest

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// copyBuffer is the buffer a command's output streams are copied through
// (io.Copy's default is 32 KiB for each stream of every command; a
// script's output is a small JSON document).
const copyBuffer = 4 << 10

// openShell creates a shell as masterzen's CreateShell does, and asks the
// guest to delete it once unused for the client's ShellIdleTimeout (the
// shell's IdleTimeOut).
func openShell(wc *winrm.Client, t *transporter) (*winrm.Shell, error) {
	m := soap.NewMessage()
	m.Header().
		To(t.url).
		ReplyTo("http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous").
		MaxEnvelopeSize(wc.EnvelopeSize).
		Id(messageID()).
		Locale(wc.Locale).
		Timeout(wc.Timeout).
		Action(actionCreate).
		ResourceURI("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd").
		AddOption(soap.NewHeaderOption("WINRS_NOPROFILE", "FALSE")).
		AddOption(soap.NewHeaderOption("WINRS_CODEPAGE", "65001")).
		Build()
	body := m.CreateBodyElement("Shell", soap.DOM_NS_WIN_SHELL)
	m.CreateElement(body, "IdleTimeOut", soap.DOM_NS_WIN_SHELL).SetContent(wsmanDuration(t.c.opts.ShellIdleTimeout))
	m.CreateElement(body, "InputStreams", soap.DOM_NS_WIN_SHELL).SetContent("stdin")
	m.CreateElement(body, "OutputStreams", soap.DOM_NS_WIN_SHELL).SetContent("stdout stderr")
	resp, err := t.Post(wc, m)
	if err != nil {
		return nil, err
	}
	id, err := winrm.ParseOpenShellResponse(resp)
	if err != nil {
		return nil, err
	}
	return wc.NewShell(id), nil
}

// messageID is a WS-Addressing MessageID: a random (version 4) UUID URN.
func messageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// runWithInput runs line in a new shell with stdin as its standard input,
// like masterzen's RunWithContextWithInput but with one difference that
// matters to a guest that goes away mid-command: masterzen ignores a failed
// stdin send and still sends end-of-input, so the script may start with
// its parameters missing. Here a failed send stops the command before
// end-of-input is sent (the error is ErrUnreachable), so a script never
// runs on parameters it did not receive whole.
func runWithInput(ctx context.Context, wc *winrm.Client, t *transporter, line string, stdout, stderr io.Writer, stdin []byte) (int, error) {
	shell, err := openShell(wc, t)
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
