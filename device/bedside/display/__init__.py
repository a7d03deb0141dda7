"""Drawing: the panel seam (luma's drivers or a dummy), the renderer, pixel-art icons and fonts.

May import ``bedside.core`` (screens, events) and the standard library, Pillow and luma.
"""
