//! Wire codecs: RESP2 and Cap'n Proto framing (being built; see issue 4).
