"""Library operations on catalogued media: verified backup, album sync."""
