package screens

import (
	"bytes"
	"encoding/binary"
	"image"
	_ "image/gif" // registers the decoder for the round-trip test
	_ "image/jpeg"
	_ "image/png"
	"testing"
)

func TestRenderDeterministicAndDistinct(t *testing.T) {
	seen := map[string]Kind{}
	for _, k := range Kinds() {
		a, b := PNG(k, "vm-1"), PNG(k, "vm-1")
		if !bytes.Equal(a, b) {
			t.Fatalf("%v: two renders differ", k)
		}
		if prev, dup := seen[string(a)]; dup {
			t.Fatalf("%v renders like %v", k, prev)
		}
		seen[string(a)] = k
	}
	if bytes.Equal(PNG(Stop, "vm-1"), PNG(Stop, "vm-2")) {
		t.Fatal("the key does not vary the stop screen")
	}
}

func TestFormatsDecode(t *testing.T) {
	for _, k := range Kinds() {
		want := Render(k, "x")
		for name, b := range map[string][]byte{"png": PNG(k, "x"), "gif": GIF(k, "x"), "jpeg": JPEG(k, "x")} {
			img, format, err := image.Decode(bytes.NewReader(b))
			if err != nil || format != name {
				t.Fatalf("%v as %s: format %q, %v", k, name, format, err)
			}
			if img.Bounds() != want.Bounds() {
				t.Fatalf("%v as %s: bounds %v", k, name, img.Bounds())
			}
			if name == "jpeg" {
				continue // lossy
			}
			for _, p := range []image.Point{{0, 0}, {40, 40}, {200, 100}, {319, 239}} {
				r1, g1, b1, _ := img.At(p.X, p.Y).RGBA()
				r2, g2, b2, _ := want.At(p.X, p.Y).RGBA()
				if r1 != r2 || g1 != g2 || b1 != b2 {
					t.Fatalf("%v as %s: pixel %v differs", k, name, p)
				}
			}
		}
		bmp := BMP(k, "x")
		le := binary.LittleEndian
		if string(bmp[:2]) != "BM" || le.Uint32(bmp[2:]) != uint32(len(bmp)) || le.Uint32(bmp[18:]) != Width || le.Uint16(bmp[28:]) != 24 {
			t.Fatalf("%v: bad BMP header", k)
		}
		// The last row in the file is the image's top row: pixel (0,0).
		r, g, b, _ := want.At(0, 0).RGBA()
		top := bmp[54+(Height-1)*((3*Width+3)&^3):]
		if top[0] != byte(b>>8) || top[1] != byte(g>>8) || top[2] != byte(r>>8) {
			t.Fatalf("%v: BMP pixel (0,0) is %v, want %v", k, top[:3], []uint32{r >> 8, g >> 8, b >> 8})
		}
	}
}
