"""The neural field mu(t, z, y, x), its ray model and rendering onto grids."""
