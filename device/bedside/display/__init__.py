"""Drawing: the loop's contract with a display (``surface``), the luma device built for the
configured panel (``device``), luma's panels and the keeper that rebuilds a failing one
(``panel``), sending only changed pages (``pages``), the layouts
and renderer, pixel-art icons, fonts, the measured text heights and the gallery of screens.

May import ``bedside.core`` and the standard library, Pillow and luma.
"""
