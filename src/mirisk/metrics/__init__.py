"""How much an attack's output reveals: image similarity and identification."""
