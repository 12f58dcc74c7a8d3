"""Built-in deforming phantoms and the continuous-rotation scan that images them."""
