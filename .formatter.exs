[inputs: ["{mix,.formatter}.exs", "{lib,demo,test,bench}/**/*.{ex,exs}"]]
