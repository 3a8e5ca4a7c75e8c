package clihelp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// Confirm shows lines on w (the first as is, the others indented) and asks
// question; only "yes" typed on in approves. Without a terminal to ask on
// (term false) it refuses: scripts pass --yes. A refusal is an error
// saying that nothing was changed.
func Confirm(in io.Reader, term bool, w io.Writer, lines []string, question string) error {
	if !term {
		return errors.New("refusing to apply without confirmation: no terminal to ask on; pass --yes to approve")
	}
	fmt.Fprintf(w, "%s\n%s Type yes to continue: ", strings.Join(lines, "\n  "), question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return errors.New("not confirmed: nothing was changed")
	}
	return nil
}

// Every calls show, and with every > 0 again after each interval (real
// time) while it says there is more, starting each time on a fresh screen
// when w is a terminal (term).
func Every(ctx context.Context, every time.Duration, term bool, w io.Writer, show func() (more bool, err error)) error {
	for {
		if every > 0 && term {
			fmt.Fprint(w, "\033[H\033[2J")
		}
		more, err := show()
		if err != nil || every <= 0 || !more {
			return err
		}
		if err := clock.SleepUntil(ctx, clock.Real{}, time.Now().Add(every)); err != nil {
			return err
		}
	}
}
