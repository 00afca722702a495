"""Enrich: a queue message becomes an event or a drop (the ordered steps, and what they
consult: salts, the site registry, the spam list, data-centre ranges, User-Agent rules, URLs)."""
