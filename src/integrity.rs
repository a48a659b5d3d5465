//! Hashing and verified exec: berth runs exactly the bytes it hashed. (Issues #2, #3.)
