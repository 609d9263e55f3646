console.log("stacd");
