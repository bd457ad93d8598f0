if (home.getUser(role)) { home.dropUser(role); }
names.forEach((name) => db.getSiblingDB(name).dropDatabase());
print(`dropped ${names.join(", ")} and user ${role}`);
