// Package screens draws the simulated VMs' console screens: small images
// (320×240) of what a Windows guest shows in each state, made of plain
// colour regions and text-like bars (no fonts), for the cloud emulators to
// serve as VNC snapshots, console screenshots and boot-diagnostics
// screenshots.
//
// The screens differ the way the real ones do, so that a classifier that
// reads colour and layout (package inventory/screen) can tell them apart:
//   - the stop screen: Windows 10 blue (#0078D7), a large ":(", two lines of
//     text, a QR code at the lower left (Classic: the older #0000AA blue with
//     white text across the width and a grey title);
//   - the recovery screen (Automatic Repair, Recovery, boot manager error):
//     a darker blue with a title and lighter blue tiles;
//   - a Safe Mode desktop: black, "Safe Mode" in the four corners and the
//     build at the top;
//   - the sign-in screen: a green-teal picture (a vertical gradient) with
//     the clock and date at the lower left;
//   - off: black; booting: black with a spinner below the middle.
//
// Rendering is deterministic: the same kind and key give the same bytes.
package screens

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"

	"github.com/fixfleet/fixfleet/inventory"
)

// Size of every rendered screen.
const (
	Width  = 320
	Height = 240
)

// Kind is a screen the world can show.
type Kind int

// Kinds of screens.
const (
	Off Kind = iota
	Booting
	Stop
	StopClassic
	Recovery
	SafeMode
	Login
)

// Kinds lists every kind, for tests.
func Kinds() []Kind { return []Kind{Off, Booting, Stop, StopClassic, Recovery, SafeMode, Login} }

func (k Kind) String() string {
	switch k {
	case Off:
		return "off"
	case Booting:
		return "booting"
	case Stop:
		return "stop"
	case StopClassic:
		return "stop-classic"
	case Recovery:
		return "recovery"
	case SafeMode:
		return "safe-mode"
	case Login:
		return "login"
	}
	return "unknown"
}

// Shows is what a person looking at the screen would call it.
func (k Kind) Shows() inventory.Screen {
	switch k {
	case Off, Booting:
		return inventory.ScreenBlack
	case Stop, StopClassic:
		return inventory.ScreenStop
	case Recovery:
		return inventory.ScreenRecovery
	case SafeMode:
		return inventory.ScreenSafeMode
	case Login:
		return inventory.ScreenLogin
	}
	return inventory.ScreenUnknown
}

// Palette indices.
const (
	cBlack = iota
	cWhite
	cGrey
	cStopBlue
	cClassicBlue
	cRecoveryBlue
	cTile
	cSpinner
	cGradient // first of gradSteps teal shades, top to bottom
)

const gradSteps = 24

func palette() color.Palette {
	p := color.Palette{
		cBlack:        color.RGBA{0, 0, 0, 255},
		cWhite:        color.RGBA{255, 255, 255, 255},
		cGrey:         color.RGBA{170, 170, 170, 255},
		cStopBlue:     color.RGBA{0x00, 0x78, 0xD7, 255},
		cClassicBlue:  color.RGBA{0x00, 0x00, 0xAA, 255},
		cRecoveryBlue: color.RGBA{0x00, 0x5A, 0x9E, 255},
		cTile:         color.RGBA{0x6F, 0xB1, 0xEA, 255},
		cSpinner:      color.RGBA{200, 200, 200, 255},
	}
	// The sign-in picture: #134E4A at the top to #3A7D5E at the bottom.
	top, bot := [3]int{0x13, 0x4E, 0x4A}, [3]int{0x3A, 0x7D, 0x5E}
	for i := range gradSteps {
		var c [3]uint8
		for j := range c {
			c[j] = uint8(top[j] + (bot[j]-top[j])*i/(gradSteps-1))
		}
		p = append(p, color.RGBA{c[0], c[1], c[2], 255})
	}
	return p
}

// canvas draws on a paletted image with a generator keyed by the screen.
type canvas struct {
	img *image.Paletted
	rng *rand.Rand
}

func (c canvas) rect(x0, y0, x1, y1 int, ci uint8) {
	r := image.Rect(x0, y0, x1, y1).Intersect(c.img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := c.img.Pix[y*c.img.Stride:]
		for x := r.Min.X; x < r.Max.X; x++ {
			row[x] = ci
		}
	}
}

// text draws a line of text-like glyph blocks from (x, y), height h, about
// width w wide: glyphs of h/2..h wide, with word gaps.
func (c canvas) text(x, y, w, h int, ci uint8) {
	end := x + w
	for x < end {
		word := 2 + c.rng.IntN(6)
		for i := 0; i < word && x < end; i++ {
			gw := max(1, h/2+c.rng.IntN(max(1, h/2)))
			top := y
			if c.rng.IntN(3) == 0 {
				top = y + h/4 // a lower-case letter
			}
			c.rect(x, top, min(x+gw, end), y+h, ci)
			x += gw + max(1, h/5)
		}
		x += h
	}
}

// Render draws screen k; key (a VM ID, say) varies its text and QR code.
func Render(k Kind, key string) *image.Paletted {
	h := fnv.New64a()
	_, _ = h.Write([]byte(k.String() + "|" + key))
	c := canvas{
		img: image.NewPaletted(image.Rect(0, 0, Width, Height), palette()),
		rng: rand.New(rand.NewPCG(h.Sum64(), 0x5c4ee4)),
	}
	switch k {
	case Booting:
		// A ring of dots below the middle.
		for i, d := range [][2]int{{0, -9}, {6, -6}, {9, 0}, {6, 6}, {0, 9}, {-6, 6}, {-9, 0}} {
			c.rect(160+d[0]-1, 180+d[1]-1, 160+d[0]+1+i%2, 180+d[1]+1+i%2, cSpinner)
		}
	case Stop:
		c.rect(0, 0, Width, Height, cStopBlue)
		// ":(" at the top left.
		c.rect(30, 34, 37, 41, cWhite)
		c.rect(30, 54, 37, 61, cWhite)
		c.rect(48, 28, 54, 34, cWhite)
		c.rect(44, 34, 50, 62, cWhite)
		c.rect(48, 62, 54, 68, cWhite)
		c.text(30, 84, 250, 8, cWhite)
		c.text(30, 98, 190, 8, cWhite)
		c.text(30, 118, 70, 8, cWhite)
		// QR code: white square, blue modules, three finder squares.
		const qx, qy, qs, m = 30, 150, 48, 4
		c.rect(qx, qy, qx+qs, qy+qs, cWhite)
		for y := qy + m; y < qy+qs-m; y += m {
			for x := qx + m; x < qx+qs-m; x += m {
				if c.rng.IntN(2) == 0 {
					c.rect(x, y, x+m, y+m, cStopBlue)
				}
			}
		}
		for _, f := range [][2]int{{qx + m, qy + m}, {qx + qs - 5*m, qy + m}, {qx + m, qy + qs - 5*m}} {
			c.rect(f[0], f[1], f[0]+4*m, f[1]+4*m, cStopBlue)
			c.rect(f[0]+m, f[1]+m, f[0]+3*m, f[1]+3*m, cWhite)
		}
		c.text(90, 156, 180, 5, cWhite)
		c.text(90, 168, 150, 5, cWhite)
		c.text(90, 184, 200, 5, cWhite)
		c.text(90, 194, 120, 5, cWhite)
	case StopClassic:
		c.rect(0, 0, Width, Height, cClassicBlue)
		c.rect(128, 24, 192, 36, cGrey)
		c.text(136, 27, 48, 6, cClassicBlue)
		for y := 48; y < 220; y += 12 {
			c.text(12, y, 180+c.rng.IntN(116), 6, cWhite)
		}
	case Recovery:
		c.rect(0, 0, Width, Height, cRecoveryBlue)
		c.text(24, 22, 150, 14, cWhite)
		c.text(24, 48, 260, 6, cWhite)
		c.text(24, 60, 200, 6, cWhite)
		for _, t := range [][2]int{{24, 86}, {166, 86}, {24, 150}, {166, 150}} {
			c.rect(t[0], t[1], t[0]+130, t[1]+52, cTile)
			c.text(t[0]+30, t[1]+14, 80, 8, cWhite)
			c.text(t[0]+30, t[1]+30, 60, 5, cWhite)
		}
	case SafeMode:
		for _, p := range [][2]int{{6, 6}, {Width - 62, 6}, {6, Height - 14}, {Width - 62, Height - 14}} {
			c.text(p[0], p[1], 56, 8, cWhite)
		}
		c.text(96, 8, 128, 6, cWhite)
	case Login:
		for y := range Height {
			c.rect(0, y, Width, y+1, uint8(cGradient+y*gradSteps/Height))
		}
		// The clock, large, and the date below it.
		c.text(24, 150, 110, 34, cWhite)
		c.text(24, 196, 140, 10, cWhite)
	}
	return c.img
}

// PNG renders screen k as a PNG.
func PNG(k Kind, key string) []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, Render(k, key)) // writes to memory: cannot fail
	return b.Bytes()
}

// GIF renders screen k as a GIF (Sakura Cloud's VNC snapshot format).
func GIF(k Kind, key string) []byte {
	var b bytes.Buffer
	_ = gif.Encode(&b, Render(k, key), nil) // already paletted: no quantizing
	return b.Bytes()
}

// JPEG renders screen k as a JPEG (EC2's console screenshot format).
func JPEG(k Kind, key string) []byte {
	var b bytes.Buffer
	_ = jpeg.Encode(&b, Render(k, key), &jpeg.Options{Quality: 80})
	return b.Bytes()
}

// BMP renders screen k as an uncompressed 24-bit BMP (Azure boot
// diagnostics' screenshot format).
func BMP(k Kind, key string) []byte {
	img := Render(k, key)
	const header = 14 + 40
	stride := (3*Width + 3) &^ 3
	out := make([]byte, header+stride*Height)
	le := binary.LittleEndian
	copy(out, "BM")
	le.PutUint32(out[2:], uint32(len(out)))
	le.PutUint32(out[10:], header)
	le.PutUint32(out[14:], 40)
	le.PutUint32(out[18:], Width)
	le.PutUint32(out[22:], Height) // positive: rows bottom-up
	le.PutUint16(out[26:], 1)
	le.PutUint16(out[28:], 24)
	le.PutUint32(out[34:], uint32(stride*Height))
	for y := range Height {
		row := out[header+(Height-1-y)*stride:]
		for x := range Width {
			r, g, b, _ := img.At(x, y).RGBA()
			row[3*x], row[3*x+1], row[3*x+2] = byte(b>>8), byte(g>>8), byte(r>>8)
		}
	}
	return out
}
