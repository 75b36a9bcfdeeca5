"""Stream history: sessions, segments, viewer samples, broadcasts and their analytics."""
