#!/usr/bin/env bash
# Makes the noisy-speech fixtures of chatvoice/tests/fixtures (committed: the
# tests need neither espeak-ng nor sox; run this only to remake them).
#
#   clean24k.wav       8 s: noise-only stretches and two sentences of
#                      espeak-ng speech (the ground truth of which frames are
#                      speech is computed from this track's energy)
#   noisy-fan24k.wav   the same speech + a laptop fan: brown and pink noise,
#                      low-passed, steady (speech about 12 dB above it)
#   noisy-keys24k.wav  + keyboard clicks: short decaying bursts of high-passed
#                      noise at irregular intervals, as loud as the speech peaks
#   noisy-babble24k.wav + babble: four other espeak voices talking at once,
#                      attenuated to about 10 dB below the speech
#
# 24 kHz mono 16-bit (espeak-ng speaks at 22 kHz, so nothing is lost; the
# engine reads them through its resampler at 48 kHz): about 380 KB each.
# Deterministic for a given espeak-ng and sox (sox -R, bash RANDOM seeded).
#
# Usage: bash scripts/make-voice-fixtures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=chatvoice/tests/fixtures
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
R=24000
# Repeatable mode: sox seeds its noise generators and dither with a fixed
# number, so the same tools make the same files byte for byte.
sox() { command sox -R "$@"; }
fmt=(-r $R -c 1 -b 16)

say() { # voice speed text file
    espeak-ng -v "$1" -s "$2" -w "$tmp/raw.wav" "$3"
    sox "$tmp/raw.wav" "${fmt[@]}" "$4" norm -3
}

# Clean track: 1.2 s silence, sentence A, 1.2 s silence, sentence B, then
# silence up to 8 s (speech peaks at -9 dBFS).
say en-us 190 "The meeting starts at nine, bring the report." "$tmp/a.wav"
say en-gb 185 "Can you hear me now? It sounds better." "$tmp/b.wav"
sox -n "${fmt[@]}" "$tmp/sil.wav" trim 0 1.2
sox "$tmp/sil.wav" "$tmp/a.wav" "$tmp/sil.wav" "$tmp/b.wav" "$tmp/sil.wav" "$tmp/sil.wav" "$tmp/sil.wav" \
    "$tmp/clean_long.wav"
sox "$tmp/clean_long.wav" "$out/clean24k.wav" trim 0 8 gain -6

# Fan: brown + pink noise, low-passed twice at 1.2 kHz.
sox -n "${fmt[@]}" "$tmp/fan.wav" synth 8 brownnoise synth 8 pinknoise mix \
    lowpass 1200 lowpass 1200 norm -20
# Keyboard: 8 ms clicks (high-passed noise, fast decay) every 90–400 ms.
sox -n "${fmt[@]}" "$tmp/click.wav" synth 0.008 whitenoise highpass 1500 fade q 0 0.008 0.007 norm -8
RANDOM=16
parts=()
total=0
i=0
while [ "$total" -lt 8000 ]; do
    gap=$((90 + RANDOM % 310))
    sox -n "${fmt[@]}" "$tmp/gap$i.wav" trim 0 "0.$(printf %03d "$gap")"
    parts+=("$tmp/gap$i.wav" "$tmp/click.wav")
    total=$((total + gap + 8))
    i=$((i + 1))
done
sox "${parts[@]}" "$tmp/keys_long.wav"
sox "$tmp/keys_long.wav" "$tmp/keys.wav" trim 0 8
# Babble: four voices, each a sentence or two, overlapped and looped to 8 s.
b=0
for spec in "en-gb-scotland 150 Did you see the game last night? It went to extra time." \
    "en-029 180 I think we should order lunch before the next call, what do you say?" \
    "en-us 140 The numbers for the third quarter look better than we expected." \
    "en-gb-x-rp 190 Sorry, I was on mute. Could you repeat the last question please?"; do
    read -r v s text <<<"$spec"
    say "$v" "$s" "$text" "$tmp/v$b.wav"
    sox "$tmp/v$b.wav" "$tmp/v$b.wav" "$tmp/v$b.wav" "$tmp/vl$b.wav" trim "0.$((b * 2))" 8
    b=$((b + 1))
done
sox -m "$tmp/vl0.wav" "$tmp/vl1.wav" "$tmp/vl2.wav" "$tmp/vl3.wav" "$tmp/babble.wav" norm -19

for n in fan keys babble; do
    sox -m -v 1 "$out/clean24k.wav" -v 1 "$tmp/$n.wav" "${fmt[@]}" "$out/noisy-${n}24k.wav" trim 0 8
done
ls -l "$out"/*24k.wav
du -ch "$out"/*.wav | tail -1
