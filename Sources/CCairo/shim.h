// cairo 1.16 (Debian libcairo2-dev): 2-D vector graphics with text, drawn to PNG and SVG.
#include <cairo/cairo.h>
#include <cairo/cairo-svg.h>
#include <cairo/cairo-pdf.h>
