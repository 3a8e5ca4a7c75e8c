// Package screen classifies a screenshot of a Windows VM's console into
// what it shows (inventory.Screen): the stop screen, the recovery screen, a
// Safe Mode desktop, the sign-in screen, a black screen, or unknown. It
// uses no model weights: only colour statistics and layout, so every rule
// below can be read and tested.
//
// Each pixel is put in one class: dark (dim and grey), white (bright and
// grey), blue (the saturated blue of the stop and recovery screens, from
// #0078D7 to the older #0000AA), light blue (the recovery screen's tiles),
// teal (the green-blue picture of the sign-in screen) or other. The image
// is also cut in a 40×30 grid of cells; a cell is a tile cell when at least
// 80% of its pixels are light blue (text edges, JPEG fringes and noise
// never fill a cell). Then, in order:
//
//   - smaller than 80×60, or not decodable: unknown;
//   - black: at least 95% dark pixels, and text in at most three of the
//     four corners;
//   - safe-mode: at least 80% dark, text (white) in all four corners, little
//     text in the middle, no blue and no teal;
//   - recovery: at least 45% blue, light blue tiles covering at least 10%
//     of the cells, some white text, and little teal or other;
//   - stop: at least 60% blue, some white text (1% to 35%), tile cells
//     under 4% (a QR code blurred by scaling or JPEG may fill a few), little
//     light blue, teal or other;
//   - login: at least 60% teal, a vertical gradient (the top and bottom
//     bands' brightness differ by at least 12), white text (1% to 25%)
//     weighted to the lower left, and no blue or light blue to speak of;
//   - anything else: unknown.
//
// Doubt is unknown. In particular the classifier never says login (the one
// screen that suggests health) for an image that is not clearly the
// sign-in screen: every login condition must hold.
package screen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif"  // decoder: Sakura Cloud's VNC snapshots are GIFs
	_ "image/jpeg" // decoder: EC2's console screenshots are JPEGs
	_ "image/png"  // decoder
	"math"

	"github.com/fixfleet/fixfleet/inventory"
)

// MinWidth and MinHeight are the smallest image the classifier reads.
const (
	MinWidth  = 80
	MinHeight = 60
)

// maxPixels is the most pixels Decode accepts (a 4K screen).
const maxPixels = 3840 * 2160

// Decode decodes a screenshot: PNG, JPEG, GIF, or an uncompressed 24- or
// 32-bit BMP (Azure boot diagnostics). Errors name what is wrong.
func Decode(b []byte) (image.Image, error) {
	if len(b) >= 2 && string(b[:2]) == "BM" {
		return decodeBMP(b)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	if cfg.Width*cfg.Height > maxPixels {
		return nil, fmt.Errorf("screenshot: %dx%d is larger than a screen", cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	return img, nil
}

// decodeBMP reads an uncompressed (BI_RGB) 24- or 32-bit BMP.
func decodeBMP(b []byte) (image.Image, error) {
	le := binary.LittleEndian
	if len(b) < 54 {
		return nil, errors.New("screenshot: BMP header is cut short")
	}
	off, w, h := int(le.Uint32(b[10:])), int(int32(le.Uint32(b[18:]))), int(int32(le.Uint32(b[22:])))
	bpp, comp := int(le.Uint16(b[28:])), le.Uint32(b[30:])
	if comp != 0 || (bpp != 24 && bpp != 32) {
		return nil, fmt.Errorf("screenshot: BMP with %d bits per pixel, compression %d: only uncompressed 24- and 32-bit BMPs are read", bpp, comp)
	}
	topDown := h < 0
	if topDown {
		h = -h
	}
	if w <= 0 || h <= 0 || w*h > maxPixels {
		return nil, fmt.Errorf("screenshot: BMP of %dx%d", w, h)
	}
	px := bpp / 8
	stride := (px*w + 3) &^ 3
	if off < 54 || off+stride*h > len(b) {
		return nil, errors.New("screenshot: BMP pixel data is cut short")
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		src := y
		if !topDown {
			src = h - 1 - y
		}
		row := b[off+src*stride:]
		for x := range w {
			p := row[px*x:]
			img.SetRGBA(x, y, color.RGBA{p[2], p[1], p[0], 255})
		}
	}
	return img, nil
}

// ClassifyBytes decodes and classifies a screenshot; an image that cannot
// be decoded is unknown.
func ClassifyBytes(b []byte) inventory.Screen {
	img, err := Decode(b)
	if err != nil {
		return inventory.ScreenUnknown
	}
	return Classify(img)
}

type class int

const (
	dark class = iota
	white
	blue
	light
	teal
	other
	nClasses
)

// classOf puts one pixel (8-bit channels) in its class.
func classOf(r, g, b int) class {
	hi, lo := max(r, g, b), min(r, g, b)
	chroma := hi - lo
	lum := (299*r + 587*g + 114*b) / 1000
	if chroma < 60 || chroma*2 < hi {
		// Grey enough: brightness decides.
		switch {
		case lum < 45:
			return dark
		case lum > 170 && chroma < 50:
			return white
		}
		if chroma < 30 {
			return other // mid grey
		}
	}
	var hue int
	switch hi {
	case r:
		hue = (60*(g-b)/chroma + 360) % 360
	case g:
		hue = 120 + 60*(b-r)/chroma
	default:
		hue = 240 + 60*(r-g)/chroma
	}
	sat := 100 * chroma / hi
	switch {
	case hue >= 195 && hue <= 250 && sat >= 45:
		if lum > 135 {
			return light
		}
		return blue
	case hue >= 135 && hue < 192 && sat >= 30:
		return teal
	}
	return other
}

// Features are the statistics a verdict rests on, as fractions of 1.
type Features struct {
	Frac      [nClasses]float64
	TileCells float64 // share of grid cells that are light-blue tiles
	// Corners: share of bright (white) pixels in each corner region (top
	// left, top right, bottom left, bottom right: 20% × 10% of the image).
	Corners [4]float64
	Middle  float64 // share of white pixels in the middle 50% × 50%
	// TopLum and BottomLum are the mean brightness of the top and bottom
	// tenth of the image.
	TopLum, BottomLum float64
	// WhiteX, WhiteY: the white pixels' centre, as fractions of the size.
	WhiteX, WhiteY float64
}

const gridW, gridH = 40, 30

// Measure computes the features of img.
func Measure(img image.Image) Features {
	var f Features
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	var counts [nClasses]int
	cells := make([][2]int, gridW*gridH) // light, total
	var corner [4][2]int
	var middle [2]int
	var topSum, botSum, topN, botN int
	var wx, wy, wn float64
	at := pixels(img)
	for y := range h {
		for x := range w {
			ri, gi, bi := at(b.Min.X+x, b.Min.Y+y)
			c := classOf(ri, gi, bi)
			counts[c]++
			cell := &cells[(y*gridH/h)*gridW+x*gridW/w]
			cell[1]++
			if c == light {
				cell[0]++
			}
			isWhite := c == white
			if isWhite {
				wx += float64(x)
				wy += float64(y)
				wn++
			}
			left, right := x < w/5, x >= w-w/5
			top, bottom := y < h/10, y >= h-h/10
			for i, in := range [4]bool{top && left, top && right, bottom && left, bottom && right} {
				if in {
					corner[i][1]++
					if isWhite {
						corner[i][0]++
					}
				}
			}
			if x >= w/4 && x < w-w/4 && y >= h/4 && y < h-h/4 {
				middle[1]++
				if isWhite {
					middle[0]++
				}
			}
			lum := (299*ri + 587*gi + 114*bi) / 1000
			if top {
				topSum += lum
				topN++
			}
			if bottom {
				botSum += lum
				botN++
			}
		}
	}
	n := float64(w * h)
	for i := range counts {
		f.Frac[i] = float64(counts[i]) / n
	}
	tiles := 0
	for _, c := range cells {
		if c[1] > 0 && c[0]*5 >= c[1]*4 {
			tiles++
		}
	}
	f.TileCells = float64(tiles) / float64(len(cells))
	ratio := func(p [2]int) float64 {
		if p[1] == 0 {
			return 0
		}
		return float64(p[0]) / float64(p[1])
	}
	for i := range corner {
		f.Corners[i] = ratio(corner[i])
	}
	f.Middle = ratio(middle)
	if topN > 0 && botN > 0 {
		f.TopLum, f.BottomLum = float64(topSum)/float64(topN), float64(botSum)/float64(botN)
	}
	if wn > 0 {
		f.WhiteX, f.WhiteY = wx/wn/float64(w), wy/wn/float64(h)
	}
	return f
}

// pixels returns a reader of img's 8-bit channels, direct for the
// decoders' usual image types.
func pixels(img image.Image) func(x, y int) (r, g, b int) {
	switch m := img.(type) {
	case *image.Paletted:
		pal := make([][3]int, len(m.Palette))
		for i, c := range m.Palette {
			r, g, b, _ := c.RGBA()
			pal[i] = [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
		}
		return func(x, y int) (int, int, int) {
			i := int(m.ColorIndexAt(x, y))
			if i >= len(pal) {
				return 0, 0, 0
			}
			return pal[i][0], pal[i][1], pal[i][2]
		}
	case *image.RGBA:
		return func(x, y int) (int, int, int) {
			c := m.RGBAAt(x, y)
			return int(c.R), int(c.G), int(c.B)
		}
	case *image.YCbCr:
		return func(x, y int) (int, int, int) {
			c := m.YCbCrAt(x, y)
			r, g, b := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
			return int(r), int(g), int(b)
		}
	}
	return func(x, y int) (int, int, int) {
		r, g, b, _ := img.At(x, y).RGBA()
		return int(r >> 8), int(g >> 8), int(b >> 8)
	}
}

// Classify says what img shows, by the rules of the package doc.
func Classify(img image.Image) inventory.Screen {
	b := img.Bounds()
	if b.Dx() < MinWidth || b.Dy() < MinHeight || b.Dx()*b.Dy() > maxPixels {
		return inventory.ScreenUnknown
	}
	return Decide(Measure(img))
}

// Decide applies the rules of the package doc to measured features.
func Decide(f Features) inventory.Screen {
	fr := f.Frac
	corners := 0
	for _, c := range f.Corners {
		if c >= 0.04 {
			corners++
		}
	}
	switch {
	case fr[dark] >= 0.95 && corners < 4:
		return inventory.ScreenBlack
	case fr[dark] >= 0.80 && corners == 4 && f.Middle < 0.02 && fr[blue]+fr[light] < 0.01 && fr[teal] < 0.01:
		return inventory.ScreenSafeMode
	case fr[blue] >= 0.45 && f.TileCells >= 0.10 && fr[white] >= 0.01 && fr[teal] < 0.05 && fr[other] < 0.15:
		return inventory.ScreenRecovery
	case fr[blue] >= 0.60 && f.TileCells < 0.04 && fr[light] < 0.06 && fr[white] >= 0.01 && fr[white] <= 0.35 &&
		fr[teal] < 0.05 && fr[other] < 0.15:
		return inventory.ScreenStop
	case fr[teal] >= 0.60 && math.Abs(f.BottomLum-f.TopLum) >= 12 && fr[white] >= 0.01 && fr[white] <= 0.25 &&
		f.WhiteX < 0.5 && f.WhiteY > 0.5 && fr[blue]+fr[light] < 0.03 && fr[other] < 0.15:
		return inventory.ScreenLogin
	}
	return inventory.ScreenUnknown
}
