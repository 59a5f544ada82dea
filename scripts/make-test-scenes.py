"""Synthetic detection scenes (bright squares "Box" and red bars "Bar" on noise, 192x128, 1-3 objects) with exact
KITTI labels: a quick smoke run of dataset_convert and DetectNet_v2 training, not the demo data.
usage: python3 scripts/make-test-scenes.py [OUT_DIR]   (default data/scenes/kitti)
"""
import os, random, struct, zlib
random.seed(5)
def png(path, w, h, px):
    raw = b''.join(b'\x00' + bytes(px[y*w*3:(y+1)*w*3]) for y in range(h))
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
import sys
root = sys.argv[1] if len(sys.argv) > 1 else "data/scenes/kitti"
os.makedirs(root + '/images', exist_ok=True); os.makedirs(root + '/labels', exist_ok=True)
W, H = 192, 128
for i in range(400):
    px = [random.randrange(50) for _ in range(W * H * 3)]
    lines = []
    for k in range(1 + i % 3):
        bar = (i + k) % 3 == 0
        bw, bh = (60 + random.randrange(8), 28) if bar else (40 + random.randrange(8), 40 + random.randrange(8))
        x0 = k * 64 + random.randrange(max(1, 64 - bw // 2)); x0 = min(x0, W - bw); y0 = random.randrange(H - bh)
        for y in range(y0, y0 + bh):
            for x in range(x0, x0 + bw):
                for c in range(3): px[(y * W + x) * 3 + c] = [230, 60, 60][c] if bar else 220
        lines.append(f"{'Bar' if bar else 'Box'} 0.00 0 0.00 {x0}.00 {y0}.00 {x0+bw}.00 {y0+bh}.00 0 0 0 0 0 0 0")
    png(f'{root}/images/{i:04d}.png', W, H, px)
    open(f'{root}/labels/{i:04d}.txt', 'w').write('\n'.join(lines) + '\n')
