package session

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"

	qrcode "github.com/yeqown/go-qrcode/v2"
)

// QR image geometry: 8 pixels per module and the 4-module quiet zone the
// standard asks for make a WhatsApp code (about 60 modules) some 500
// pixels wide, which a phone camera reads from a laptop screen.
const (
	qrModulePixels = 8
	qrQuietModules = 4
)

// RenderQR encodes code as a QR image with medium error correction and
// returns it as a PNG data: URI for an <img>.
func RenderQR(code string) (string, error) {
	q, err := qrcode.NewWith(code, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return "", fmt.Errorf("encoding QR code: %w", err)
	}
	w := &pngWriter{}
	if err := q.Save(w); err != nil {
		return "", fmt.Errorf("drawing QR code: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(w.buf.Bytes()), nil
}

// pngWriter draws a QR matrix as a black-on-white, 1-bit PNG.
type pngWriter struct {
	buf bytes.Buffer
}

func (w *pngWriter) Write(mat qrcode.Matrix) error {
	bits := mat.Bitmap()
	n := len(bits)
	size := (n + 2*qrQuietModules) * qrModulePixels
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{color.White, color.Black})
	for y, row := range bits {
		for x, dark := range row {
			if !dark {
				continue
			}
			x0, y0 := (x+qrQuietModules)*qrModulePixels, (y+qrQuietModules)*qrModulePixels
			for dy := range qrModulePixels {
				for dx := range qrModulePixels {
					img.SetColorIndex(x0+dx, y0+dy, 1)
				}
			}
		}
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	return enc.Encode(&w.buf, img)
}

func (w *pngWriter) Close() error { return nil }
