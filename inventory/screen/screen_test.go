package screen_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/screen"
	"github.com/fixfleet/fixfleet/providers/sim/screens"
)

// perturbations change a rendered screen the way a real capture might.
var perturbations = []struct {
	name string
	f    func(image.Image) image.Image
}{
	{"as rendered", func(m image.Image) image.Image { return m }},
	{"noise ±16", func(m image.Image) image.Image { return noise(m, 16) }},
	{"half size, averaged", func(m image.Image) image.Image { return shrink(m) }},
	{"double size", func(m image.Image) image.Image { return scale(m, 640, 480) }},
	{"jpeg q75", func(m image.Image) image.Image { return jpegOf(m, 75) }},
	{"noise then jpeg q60", func(m image.Image) image.Image { return jpegOf(noise(m, 12), 60) }},
	{"half size then jpeg q70", func(m image.Image) image.Image { return jpegOf(shrink(m), 70) }},
}

func TestClassifyRenders(t *testing.T) {
	for _, k := range screens.Kinds() {
		for _, key := range []string{"vm-1", "srv-01"} {
			for _, p := range perturbations {
				t.Run(fmt.Sprintf("%v/%s/%s", k, key, p.name), func(t *testing.T) {
					img := p.f(screens.Render(k, key))
					if got := screen.Classify(img); got != k.Shows() {
						t.Fatalf("classified %q, want %q (features %+v)", got, k.Shows(), screen.Measure(img))
					}
				})
			}
		}
	}
}

func TestClassifyBytesFormats(t *testing.T) {
	for _, k := range screens.Kinds() {
		for name, b := range map[string][]byte{
			"png": screens.PNG(k, "x"), "gif": screens.GIF(k, "x"), "jpeg": screens.JPEG(k, "x"), "bmp": screens.BMP(k, "x"),
		} {
			if got := screen.ClassifyBytes(b); got != k.Shows() {
				t.Errorf("%v as %s: %q, want %q", k, name, got, k.Shows())
			}
		}
	}
}

// TestUnknown: images that are none of the screens, or too doubtful, must
// be unknown — above all never login.
func TestUnknown(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	login := screens.Render(screens.Login, "x")
	stop := screens.Render(screens.Stop, "x")
	cases := []struct {
		name string
		img  image.Image
	}{
		{"random noise", fill(320, 240, func(x, y int) color.RGBA {
			return color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
		})},
		{"mid grey", solid(320, 240, color.RGBA{128, 128, 128, 255})},
		{"white", solid(320, 240, color.RGBA{255, 255, 255, 255})},
		{"red-green photo", fill(320, 240, func(x, y int) color.RGBA { return color.RGBA{uint8(x * 255 / 320), uint8(y * 255 / 240), 40, 255} })},
		{"plain stop blue, no text", solid(320, 240, color.RGBA{0, 0x78, 0xD7, 255})},
		{"plain teal, no clock", fill(320, 240, func(x, y int) color.RGBA { return color.RGBA{0x13, uint8(0x4E + y/6), 0x4A, 255} })},
		{"flat teal with a clock (no picture)", paint(clone(login), func(x, y int, c color.RGBA) color.RGBA {
			if c.R == 255 {
				return c
			}
			return color.RGBA{0x26, 0x66, 0x54, 255}
		})},
		{"sign-in screen, top half a stop screen", paint(clone(login), func(x, y int, c color.RGBA) color.RGBA {
			if y < 120 {
				return rgba(stop.At(x, y))
			}
			return c
		})},
		{"sign-in screen with the clock at the top right", flip(login)},
		{"sign-in screen covered in text", paint(clone(login), func(x, y int, c color.RGBA) color.RGBA {
			if (y/4)%2 == 0 && x > 20 && x < 300 {
				return color.RGBA{255, 255, 255, 255}
			}
			return c
		})},
		{"stop screen, lower half teal", paint(clone(stop), func(x, y int, c color.RGBA) color.RGBA {
			if y >= 100 {
				return color.RGBA{0x26, 0x66, 0x54, 255}
			}
			return c
		})},
		{"black with text everywhere", fill(320, 240, func(x, y int) color.RGBA {
			if (x/6+y/10)%5 == 0 {
				return color.RGBA{255, 255, 255, 255}
			}
			return color.RGBA{0, 0, 0, 255}
		})},
		{"too small", scale(login, 64, 48)},
		{"heavy noise on the sign-in screen", noise(login, 90)},
	}
	for _, c := range cases {
		if got := screen.Classify(c.img); got != inventory.ScreenUnknown {
			t.Errorf("%s: %q, want unknown (features %+v)", c.name, got, screen.Measure(c.img))
		}
	}
	for name, b := range map[string][]byte{
		"empty": nil, "garbage": []byte("not an image"), "truncated png": screens.PNG(screens.Login, "x")[:100],
		"bmp header only": screens.BMP(screens.Login, "x")[:60],
	} {
		if got := screen.ClassifyBytes(b); got != inventory.ScreenUnknown {
			t.Errorf("%s: %q, want unknown", name, got)
		}
	}
}

func TestDecodeErrorsSayWhy(t *testing.T) {
	bmp := screens.BMP(screens.Stop, "x")
	bmp[30] = 1 // RLE8
	if _, err := screen.Decode(bmp); err == nil || !bytes.Contains([]byte(err.Error()), []byte("uncompressed")) {
		t.Fatalf("compressed BMP: %v", err)
	}
	if _, err := screen.Decode([]byte("xx")); err == nil {
		t.Fatal("garbage decoded")
	}
}

// ---- image helpers ----

func rgba(c color.Color) color.RGBA {
	r, g, b, _ := c.RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}
}

func fill(w, h int, f func(x, y int) color.RGBA) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetRGBA(x, y, f(x, y))
		}
	}
	return m
}

func solid(w, h int, c color.RGBA) *image.RGBA {
	return fill(w, h, func(int, int) color.RGBA { return c })
}

func clone(m image.Image) *image.RGBA {
	b := m.Bounds()
	return fill(b.Dx(), b.Dy(), func(x, y int) color.RGBA { return rgba(m.At(b.Min.X+x, b.Min.Y+y)) })
}

func paint(m *image.RGBA, f func(x, y int, c color.RGBA) color.RGBA) *image.RGBA {
	b := m.Bounds()
	for y := range b.Dy() {
		for x := range b.Dx() {
			m.SetRGBA(x, y, f(x, y, m.RGBAAt(x, y)))
		}
	}
	return m
}

func flip(m image.Image) *image.RGBA {
	b := m.Bounds()
	return fill(b.Dx(), b.Dy(), func(x, y int) color.RGBA { return rgba(m.At(b.Dx()-1-x, b.Dy()-1-y)) })
}

func noise(m image.Image, amp int) *image.RGBA {
	rng := rand.New(rand.NewPCG(7, uint64(amp)))
	clamp := func(v int) uint8 { return uint8(min(255, max(0, v))) }
	return paint(clone(m), func(_, _ int, c color.RGBA) color.RGBA {
		d := func() int { return rng.IntN(2*amp+1) - amp }
		return color.RGBA{clamp(int(c.R) + d()), clamp(int(c.G) + d()), clamp(int(c.B) + d()), 255}
	})
}

// scale resizes by nearest neighbour.
func scale(m image.Image, w, h int) *image.RGBA {
	b := m.Bounds()
	return fill(w, h, func(x, y int) color.RGBA { return rgba(m.At(b.Min.X+x*b.Dx()/w, b.Min.Y+y*b.Dy()/h)) })
}

// shrink halves the size, averaging 2×2 blocks (what a scaler does).
func shrink(m image.Image) *image.RGBA {
	b := m.Bounds()
	return fill(b.Dx()/2, b.Dy()/2, func(x, y int) color.RGBA {
		var s [3]int
		for _, d := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
			c := rgba(m.At(b.Min.X+2*x+d[0], b.Min.Y+2*y+d[1]))
			s[0], s[1], s[2] = s[0]+int(c.R), s[1]+int(c.G), s[2]+int(c.B)
		}
		return color.RGBA{uint8(s[0] / 4), uint8(s[1] / 4), uint8(s[2] / 4), 255}
	})
}

func jpegOf(m image.Image, q int) image.Image {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: q}); err != nil {
		panic(err)
	}
	out, err := jpeg.Decode(&b)
	if err != nil {
		panic(err)
	}
	return out
}
