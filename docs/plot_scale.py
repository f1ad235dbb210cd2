"""Hand-written SVG of the scale run: 4 small panels, log x axis."""
import math, re, sys

rows = []
for line in open(sys.argv[1]):
    if not line.startswith('| ') or not line[2].isdigit():
        continue
    c = [x.strip() for x in line.strip().strip('|').split('|')]
    n = int(c[0])
    s1, s2 = [float(x) for x in c[3].split('/')]
    r1, h1 = [float(x) for x in c[4].split('/')]
    r2, h2 = [float(x) for x in c[5].split('/')]
    rows.append(dict(n=n, append=float(c[2]), s1=s1, s2=s2, rss1=r1, hwm1=h1, rss2=r2, hwm2=h2,
                     verify=float(c[8])))

W, H = 920, 620
PW, PH = 340, 200            # plot area per panel
def ms(v):
    return f"{v/1000:.1f} s" if v >= 1000 else f"{v:.0f} ms"
def mb(v):
    return f"{v/1024:.2f} GiB" if v >= 1024 else f"{v:.0f} MiB"
def tick(i, v):
    if i == 0:
        return f"{v/1000:g} s" if v >= 1000 else f"{v:g} ms"
    return f"{v:g} MiB"
def ks(v):
    return f"{v/1000:.1f} k"
panels = [
    ("Start-up (spawn until a health check answers)", [("first start after the appends", "s1", "#d62728", None), ("second start", "s2", "#1f77b4", "4 3")], 1000, "target 1 s", True, ms),
    ("Server memory after start-up", [("VmHWM (peak), first start", "hwm1", "#d62728", None), ("VmRSS, second start", "rss2", "#1f77b4", "4 3")], 256, "target 256 MiB", True, mb),
    ("Append rate, entries/s (1000 per commit)", [("append", "append", "#2ca02c", None)], None, None, False, ks),
    ("Full verification (check_chain), entries/s", [("verify", "verify", "#9467bd", None)], None, None, False, ks),
]
xs = [r["n"] for r in rows]
lx0, lx1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
if lx1 == lx0: lx1 += 1

def nice_max(v):
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * e >= v:
            return m * e
    return 10 * e

def fmt(v):
    if v >= 1e6: return f"{v/1e6:g} M"
    if v >= 1e3: return f"{v/1e3:g} k"
    return f"{v:g}"

out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">daypass bench scale: 10^5 active grants (9 366 at 10^4 entries), log size on a log scale</text>']
for i, (title, series, target, tlabel, logy, lab) in enumerate(panels):
    ox = 70 + (i % 2) * 440
    oy = 60 + (i // 2) * 280
    vals = [r[k] for _, k, _, _ in series for r in rows]
    X = lambda n: ox + (math.log10(n) - lx0) / (lx1 - lx0) * PW
    if logy:
        ly0 = math.floor(math.log10(min(vals + ([target] if target else []))))
        ly1 = math.ceil(math.log10(max(vals + ([target] if target else []))))
        Y = lambda v, ly0=ly0, ly1=ly1: oy + PH - (math.log10(v) - ly0) / (ly1 - ly0) * PH
        ticks = [10 ** e for e in range(ly0, ly1 + 1)]
    else:
        ymax = nice_max(max(vals + ([target * 1.1] if target else [])))
        Y = lambda v, ymax=ymax: oy + PH - v / ymax * PH
        ticks = [ymax * k / 4 for k in range(5)]
    out.append(f'<text x="{ox + PW/2}" y="{oy - 10}" text-anchor="middle" font-weight="bold">{title}</text>')
    out.append(f'<rect x="{ox}" y="{oy}" width="{PW}" height="{PH}" fill="none" stroke="#888"/>')
    for v in ticks:
        y = Y(v)
        out.append(f'<line x1="{ox}" y1="{y:.1f}" x2="{ox+PW}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{ox-6}" y="{y+4:.1f}" text-anchor="end">{tick(i, v) if logy else fmt(v)}</text>')
    for e in range(lx0, lx1 + 1):
        x = X(10 ** e)
        out.append(f'<line x1="{x:.1f}" y1="{oy}" x2="{x:.1f}" y2="{oy+PH}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{oy+PH+16}" text-anchor="middle">10<tspan dy="-5" font-size="9">{e}</tspan></text>')
    out.append(f'<text x="{ox+PW/2}" y="{oy+PH+34}" text-anchor="middle" fill="#555">log entries</text>')
    if target:
        y = Y(target)
        out.append(f'<line x1="{ox}" y1="{y:.1f}" x2="{ox+PW}" y2="{y:.1f}" stroke="#000" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{ox+4}" y="{y-4:.1f}">{tlabel}</text>')
    for j, (label, k, color, dash) in enumerate(series):
        pts = " ".join(f"{X(r['n']):.1f},{Y(r[k]):.1f}" for r in rows)
        d = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{d}/>')
        for r in rows:
            out.append(f'<circle cx="{X(r["n"]):.1f}" cy="{Y(r[k]):.1f}" r="3.5" fill="{color}"/>')
            dy = 15 if j == 1 else -7
            out.append(f'<text x="{X(r["n"])+5:.1f}" y="{Y(r[k])+dy:.1f}" font-size="10" fill="{color}">{lab(r[k])}</text>')
        if len(series) > 1:
            ly = oy + 16 + j * 15
            lx = ox + 8
            out.append(f'<line x1="{lx}" y1="{ly-4}" x2="{lx+18}" y2="{ly-4}" stroke="{color}" stroke-width="2"{d}/>')
            out.append(f'<text x="{lx+22}" y="{ly}" font-size="10">{label}</text>')
out.append('</svg>')
open(sys.argv[2], 'w').write("\n".join(out) + "\n")
print("rows", len(rows))
